"""Webhook endpoints (url, secret, events, active) and the read-only delivery log.

The signing secret is write-only: a generated one is shown once, on the page that follows the
creation; the change form never shows the stored secret (a new value typed there replaces it).
A URL that is, or resolves to, a non-public address is refused unless its host is named in
WEBHOOK_ALLOWED_HOSTS (`transport.py`; every delivery attempt checks again).
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from apps.core.admin import ReadOnlyAdmin
from apps.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from apps.webhooks.transport import webhook_url_problem


class WebhookEndpointForm(forms.ModelForm[WebhookEndpoint]):
    url = forms.URLField(max_length=500, assume_scheme="https")
    secret = forms.CharField(
        max_length=200,
        required=False,
        strip=True,
        # Never rendered back: neither the stored secret nor what was typed into a failed form.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        label="Signing secret",
    )
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "secret", "events", "active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["secret"].help_text = (
            "Leave blank to keep the current secret; type a new one to replace it. The stored "
            "secret is never shown."
            if self.instance.pk
            else "Leave blank to generate one (shown once, after saving), or type your own."
        )

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        problem = webhook_url_problem(url)
        if problem:
            raise forms.ValidationError(problem)
        return url

    def clean_secret(self) -> str:
        # Blank keeps the secret the instance has: the stored one, or the new default.
        typed: str = self.cleaned_data.get("secret") or ""
        return typed or self.instance.secret

    def clean_events(self) -> list[str]:
        return sorted(self.cleaned_data.get("events") or [])


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin[WebhookEndpoint]):
    form = WebhookEndpointForm
    list_display = ["name", "url", "subscribed", "active", "updated_at"]
    list_filter = ["active"]
    search_fields = ["name", "url"]

    @admin.display(description="events")
    def subscribed(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.events) or "—"

    def get_fields(
        self, request: HttpRequest, obj: WebhookEndpoint | None = None
    ) -> tuple[str | list[str] | tuple[str, ...], ...]:
        fields = tuple(super().get_fields(request, obj))
        if obj is not None and not self.has_change_permission(request, obj):
            # A view-only page renders every field as text: the secret is not one of them.
            fields = tuple(field for field in fields if field != "secret")
        return fields

    def response_add(
        self, request: HttpRequest, obj: WebhookEndpoint, post_url_continue: str | None = None
    ) -> HttpResponse:
        if request.POST.get("secret", "").strip():
            return super().response_add(request, obj, post_url_continue)  # typed: known to them
        # The only time a generated secret is shown: on this page (not kept in a message).
        response = TemplateResponse(
            request,
            "admin/webhooks/webhookendpoint/secret_once.html",
            {
                **self.admin_site.each_context(request),
                "title": "Copy the signing secret",
                "opts": self.model._meta,
                "endpoint": obj,
                "secret": obj.secret,
                "change_url": reverse("admin:webhooks_webhookendpoint_change", args=[obj.pk]),
                "list_url": reverse("admin:webhooks_webhookendpoint_changelist"),
            },
        )
        response["Cache-Control"] = "no-store"
        return response


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """The delivery log: every event sent to every endpoint, newest first."""

    list_display = [
        "id",
        "event",
        "endpoint",
        "status",
        "attempts",
        "status_code",
        "error",
        "created_at",
        "last_attempt_at",
        "next_attempt_at",
    ]
    list_filter = ["status", "event", "endpoint"]
    date_hierarchy = "created_at"
    list_select_related = ["endpoint"]

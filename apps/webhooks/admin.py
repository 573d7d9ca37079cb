"""Webhook endpoints (url, secret, events, active) and the read-only delivery log."""

from django import forms
from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent


class WebhookEndpointForm(forms.ModelForm[WebhookEndpoint]):
    url = forms.URLField(max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "secret", "events", "active"]

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

"""Prompt governance in the Django admin.

Prompt versions are append-only: the change view is read-only, with "New version from this"
(an add form prefilled from the version, whose parent it becomes) and "Diff against parent".
Activation (or rollback) is an action. A/B tests are in apps/review/prompt_admin.py (their
results rest on audits). Each writes through `prompts.services`, which checks the permission
(`orchestrator.activate_promptversion`) and records every switch as a PromptActivation.
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from apps.core.admin import ReadOnlyAdmin, version_activate_action
from apps.core.users import staff_user
from apps.orchestrator.models import PromptActivation, PromptVersion
from apps.orchestrator.prompts.selectors import (
    prompt_version_diff,
)
from apps.orchestrator.prompts.services import (
    ACTIVATE_PERMISSION,
    ADD_PERMISSION,
    few_shot_errors,
    prompt_version_activate,
    prompt_version_append,
    template_errors,
)

VERSION_ADD_FIELDS = ["parent", "text", "few_shot", "note"]
VERSION_FIELDS = ["purpose", "parent", "text", "few_shot", "note", "author", "active", "created_at"]


class PromptVersionForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = PromptVersion
        fields = VERSION_ADD_FIELDS

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if "text" in cleaned:
            for error in template_errors(cleaned["text"]):
                self.add_error("text", error)
        if "few_shot" in cleaned:
            for error in few_shot_errors(cleaned["few_shot"]):
                self.add_error("few_shot", error)
        return cleaned


@admin.register(PromptVersion)
class PromptVersionAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "purpose", "active", "parent", "author", "note", "created_at"]
    list_filter = ["purpose", "active"]
    search_fields = ["note", "text"]
    form = PromptVersionForm
    actions = ["activate"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PromptVersion]:
        return super().get_queryset(request).select_related("parent", "author")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm(ADD_PERMISSION))

    def has_activate_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(ACTIVATE_PERMISSION))

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return tuple(VERSION_ADD_FIELDS if obj is None else VERSION_FIELDS)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [] if obj is None else VERSION_FIELDS

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        """ "New version from this": the add form starts from the version it is made from."""
        initial: dict[str, Any] = dict(super().get_changeform_initial_data(request))
        source_id = request.GET.get("from", "")
        source = PromptVersion.objects.filter(pk=source_id).first() if source_id.isdigit() else None
        if source is not None:
            initial.update(parent=source.pk, text=source.text, few_shot=source.few_shot)
        return initial

    def save_model(self, request: HttpRequest, obj: PromptVersion, form: Any, change: bool) -> None:
        # Never `obj.save()`: the service appends the version (an edit is always a new row).
        version = prompt_version_append(
            text=obj.text,
            few_shot=obj.few_shot,
            parent=obj.parent,
            author=staff_user(request),
            note=obj.note,
        )
        obj.pk, obj.purpose, obj.author = version.pk, version.purpose, version.author
        obj.created_at, obj.active = version.created_at, version.active
        obj._state.adding, obj._state.db = False, version._state.db

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        info = (self.opts.app_label, self.opts.model_name)
        context = {
            **(extra_context or {}),
            "diff_url": reverse(f"admin:{info[0]}_{info[1]}_diff", args=[object_id]),
            "new_version_url": reverse(f"admin:{info[0]}_{info[1]}_add") + f"?from={object_id}",
            "can_add_version": self.has_add_permission(request),
        }
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self) -> list[URLPattern]:
        info = (self.opts.app_label, self.opts.model_name)
        diff = path(
            "<path:object_id>/diff/",
            self.admin_site.admin_view(self.diff_view),
            name=f"{info[0]}_{info[1]}_diff",
        )
        return [diff, *super().get_urls()]

    def diff_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        version = self.get_object(request, unquote(object_id))
        if version is None:
            raise Http404("No such prompt version.")
        if not self.has_view_permission(request, version):
            raise DjangoPermissionDenied
        parent = f"v{version.parent_id}" if version.parent_id else "no parent"
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": version,
            "title": f"{version}: changes against {parent}",
            "lines": prompt_version_diff(version=version),
        }
        return TemplateResponse(request, "admin/orchestrator/promptversion/diff.html", context)

    @admin.action(
        description="Activate (roll back to) the selected version", permissions=["activate"]
    )
    def activate(self, request: HttpRequest, queryset: QuerySet[PromptVersion]) -> None:
        version_activate_action(
            self,
            request,
            queryset,
            activate=prompt_version_activate,
            nothing_active="no active prompt",
        )


@admin.register(PromptActivation)
class PromptActivationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "previous", "version", "who", "experiment", "note"]
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[PromptActivation]:
        return (
            super()
            .get_queryset(request)
            .select_related("previous", "version", "actor", "experiment")
        )

    @admin.display(description="by", ordering="actor")
    def who(self, activation: PromptActivation) -> str:
        return activation.actor.get_username() if activation.actor else "system"

"""Prompt governance in the Django admin.

Prompt versions are append-only: the change view is read-only, with "New version from this"
(an add form prefilled from the version, whose parent it becomes) and "Diff against parent".
Activation (or rollback) is an action; A/B tests are started from their add form and ended by
promoting a winner. Each writes through `prompts.services`, which checks the permission
(`orchestrator.activate_promptversion`) and records every switch as a PromptActivation.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from apps.core.admin import ReadOnlyAdmin, version_activate_action
from apps.core.errors import ApplicationError
from apps.core.users import staff_user
from apps.orchestrator.models import PromptActivation, PromptExperiment, PromptVersion
from apps.orchestrator.prompts.selectors import (
    ArmResult,
    ExperimentResult,
    prompt_experiment_result,
    prompt_version_diff,
)
from apps.orchestrator.prompts.services import (
    ACTIVATE_PERMISSION,
    ADD_PERMISSION,
    few_shot_errors,
    prompt_experiment_promote,
    prompt_experiment_start,
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


class PromptExperimentForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = PromptExperiment
        fields = ["variant", "split", "note"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "variant" in self.fields:
            field = self.fields["variant"]
            assert isinstance(field, forms.ModelChoiceField)
            field.queryset = PromptVersion.objects.filter(active=False)
            field.help_text = "Tested against the active version (the control)."

    def clean_split(self) -> float:
        split = float(self.cleaned_data["split"])
        if not 0 < split < 1:
            raise forms.ValidationError("The variant's share must lie strictly between 0 and 1.")
        return split

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if PromptExperiment.objects.filter(status=PromptExperiment.Status.RUNNING).exists():
            raise forms.ValidationError("An A/B test is running: promote its winner first.")
        if not PromptVersion.objects.filter(active=True).exists():
            raise forms.ValidationError("There is no active prompt to compare against.")
        return cleaned


@admin.register(PromptExperiment)
class PromptExperimentAdmin(ReadOnlyAdmin):
    list_display = [
        "__str__",
        "status",
        "control",
        "variant",
        "split",
        "started_at",
        "started_by",
        "winner",
        "ended_at",
    ]
    list_filter = ["status"]
    form = PromptExperimentForm
    actions = ["promote_variant", "keep_control"]
    fields_shown = [
        "purpose",
        "control",
        "variant",
        "split",
        "note",
        "status",
        "started_at",
        "started_by",
        "ended_at",
        "ended_by",
        "winner",
        "results",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PromptExperiment]:
        return (
            super()
            .get_queryset(request)
            .select_related("control", "variant", "winner", "started_by", "ended_by")
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm(ACTIVATE_PERMISSION))

    def has_activate_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(ACTIVATE_PERMISSION))

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("variant", "split", "note") if obj is None else tuple(self.fields_shown)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [] if obj is None else self.fields_shown

    def save_model(
        self, request: HttpRequest, obj: PromptExperiment, form: Any, change: bool
    ) -> None:
        experiment = prompt_experiment_start(
            variant=obj.variant, split=obj.split, actor=staff_user(request), note=obj.note
        )
        obj.pk, obj.control, obj.purpose = experiment.pk, experiment.control, experiment.purpose
        obj.started_at, obj.started_by = experiment.started_at, experiment.started_by
        obj._state.adding, obj._state.db = False, experiment._state.db

    @admin.display(description="results")
    def results(self, experiment: PromptExperiment) -> SafeString:
        return results_table(prompt_experiment_result(experiment=experiment))

    def _promote(
        self, request: HttpRequest, queryset: QuerySet[PromptExperiment], arm: str
    ) -> None:
        experiments = list(queryset[:2])
        if len(experiments) != 1:
            self.message_user(request, "Select exactly one A/B test.", messages.WARNING)
            return
        experiment = experiments[0]
        winner = experiment.variant if arm == "variant" else experiment.control
        try:
            prompt_experiment_promote(
                experiment=experiment, winner=winner, actor=staff_user(request)
            )
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(
            request, f"{experiment} ended: {winner} is the active prompt.", messages.SUCCESS
        )

    @admin.action(
        description="Promote the variant (end the test, activate it)", permissions=["activate"]
    )
    def promote_variant(self, request: HttpRequest, queryset: QuerySet[PromptExperiment]) -> None:
        self._promote(request, queryset, "variant")

    @admin.action(
        description="Keep the control (end the test, control stays active)",
        permissions=["activate"],
    )
    def keep_control(self, request: HttpRequest, queryset: QuerySet[PromptExperiment]) -> None:
        self._promote(request, queryset, "control")


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _number(value: float | None, unit: str = "", digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}{unit}"


def _accuracy(arm: ArmResult) -> str:
    if arm.accuracy is None:
        return "— (no audits yet)"
    low, high = arm.accuracy_interval
    return f"{arm.accuracy:.1%} [{low:.1%}, {high:.1%}] of {arm.audited}"


def results_table(result: ExperimentResult) -> SafeString:
    """Per-arm figures and the significance test as an HTML table (every value escaped)."""
    arms = (result.control, result.variant)
    rows = [
        ("routings with the prompt", [str(arm.routings) for arm in arms]),
        ("accuracy (audits, 95% CI)", [_accuracy(arm) for arm in arms]),
        ("escalation share", [_share(arm.escalation_share) for arm in arms]),
        ("review share", [_share(arm.review_share) for arm in arms]),
        (
            "cost per routing",
            [
                "—"
                if arm.cost_per_routing_usd is None
                else f"${float(arm.cost_per_routing_usd):.6f}"
                for arm in arms
            ],
        ),
        (
            "model latency p50 / p95",
            [
                f"{_number(arm.latency_p50_ms, ' ms')} / {_number(arm.latency_p95_ms, ' ms')}"
                for arm in arms
            ],
        ),
    ]
    head = format_html(
        "<tr><th></th><th>control ({})</th><th>variant ({})</th></tr>",
        result.control.version,
        result.variant.version,
    )
    body = format_html_join(
        "", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>", ((n, a, b) for n, (a, b) in rows)
    )
    metric = result.metric.replace("_", " ")
    if result.test is None:
        verdict = format_html("<p>{}: not enough data for a test yet.</p>", metric)
    else:
        verdict = format_html(
            "<p>Two-proportion z-test on {} (variant minus control {}): z = {}, p = {} — {}. "
            "Sample per arm for 80% power at this difference: {}; still needed: {}.</p>",
            metric,
            f"{result.test.difference:+.1%}",
            f"{result.test.z:.3f}",
            f"{result.test.p_value:.4f}",
            "significant at 5%" if result.significant else "not significant at 5%",
            _number(result.required_per_arm),
            _number(result.still_needed),
        )
    return format_html("<table>{}{}</table>{}", head, body, verdict)

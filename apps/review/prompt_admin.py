"""Prompt A/B tests in the Django admin: started from their add form, watched on their change
page (the results table, apps/review/prompt_results.py) and ended by promoting a winner, each
through the orchestrator's `prompts.services`. Registered here, beside the audits whose
verdicts the results rest on; the admin URLs stay /admin/orchestrator/promptexperiment/."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from apps.core.admin import ReadOnlyAdmin
from apps.core.errors import ApplicationError
from apps.core.users import staff_user
from apps.orchestrator.models import PromptExperiment, PromptVersion
from apps.orchestrator.prompts.services import (
    ACTIVATE_PERMISSION,
    prompt_experiment_promote,
    prompt_experiment_start,
)
from apps.review.prompt_results import ArmResult, ExperimentResult, prompt_experiment_result


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

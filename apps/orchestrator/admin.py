"""Routing configuration (rules, editable), the decision record, prompt and model versions
(read-only). A local model version can be activated, or rolled back to, by an admin action.
Prompt versions, their activations and A/B tests are in `prompts/admin.py` (registered here)."""

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.admin import ReadOnlyAdmin, version_activate_action
from apps.orchestrator.models import (
    ModelVersion,
    ModelVersionActivation,
    RoutingDecision,
    RoutingRule,
)
from apps.orchestrator.prompts import admin as prompts_admin  # noqa: F401  (registers the prompt admins)
from apps.orchestrator.training.versions import ACTIVATE_PERMISSION, model_version_activate


class RoutingRuleForm(forms.ModelForm[RoutingRule]):
    class Meta:
        model = RoutingRule
        fields = ["name", "kind", "pattern", "pool", "priority", "active"]
        help_texts = {
            "pattern": (
                "A keyword or phrase matches whole words in any case. A regular expression uses "
                "RE2 syntax (any case; linear time): no backreferences, lookahead or lookbehind; "
                "\\w, \\d, \\s and \\b are ASCII only (\\pL is any letter). See "
                "docs/orchestrator.md, Rules."
            )
        }


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin[RoutingRule]):
    form = RoutingRuleForm
    list_display = ["name", "kind", "pattern", "pool", "priority", "active"]
    list_editable = ["priority", "active"]
    list_filter = ["active", "kind", "pool"]
    search_fields = ["name", "pattern"]


@admin.register(RoutingDecision)
class RoutingDecisionAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "ticket",
        "tier",
        "action",
        "pool",
        "confidence",
        "model",
        "latency_ms",
        "cost_usd",
        "valid",
        "final",
        "dry_run",
    ]
    list_filter = ["tier", "action", "final", "valid", "dry_run", "pool", "model"]
    search_fields = ["request_id", "ticket__id", "reason", "error"]
    date_hierarchy = "created_at"


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = [
        "__str__",
        "active",
        "threshold",
        "holdout_accuracy",
        "holdout_ece",
        "gate",
        "training_examples",
        "note",
        "created_at",
    ]
    list_filter = ["active"]
    exclude = ["artifact"]
    actions = ["activate"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModelVersion]:
        # Artifacts run to megabytes; the admin never shows one.
        return super().get_queryset(request).defer("artifact")

    @admin.display(description="held-out accuracy")
    def holdout_accuracy(self, version: ModelVersion) -> str:
        return _figure(version.metrics.get("accuracy"))

    @admin.display(description="held-out ECE")
    def holdout_ece(self, version: ModelVersion) -> str:
        return _figure(version.metrics.get("ece"))

    @admin.display(description="retraining gate")
    def gate(self, version: ModelVersion) -> str:
        gate = version.metrics.get("gate")
        if not isinstance(gate, dict):
            return "—"
        return "passed" if gate.get("passed") else "failed"

    def has_activate_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(ACTIVATE_PERMISSION))

    @admin.action(
        description="Activate (roll back to) the selected version", permissions=["activate"]
    )
    def activate(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        version_activate_action(
            self,
            request,
            queryset,
            activate=model_version_activate,
            nothing_active="no active model",
        )


@admin.register(ModelVersionActivation)
class ModelVersionActivationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "previous", "version", "who", "note"]
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModelVersionActivation]:
        return (
            super()
            .get_queryset(request)
            .select_related("previous", "version", "actor")
            .defer("previous__artifact", "version__artifact")
        )

    @admin.display(description="by", ordering="actor")
    def who(self, activation: ModelVersionActivation) -> str:
        return activation.actor.get_username() if activation.actor else "retraining"


def _figure(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "—"

"""Local model versions in the admin (read-only): each version's figures and retraining gate,
and the admin action that activates one, or rolls back to it. They live with training, which
makes them; the models are the orchestrator's (/admin/orchestrator/modelversion/)."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.admin import ReadOnlyAdmin, version_activate_action
from apps.orchestrator.models import ModelVersion, ModelVersionActivation
from apps.review.training.versions import ACTIVATE_PERMISSION, model_version_activate


def _figure(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "—"


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = [
        "__str__",
        "active",
        "kind",
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

from django.contrib import admin
from django.http import HttpRequest

from apps.orchestrator.models import ModelVersion, PromptVersion, RoutingDecision, RoutingRule


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin[RoutingRule]):
    list_display = ["name", "kind", "pattern", "pool", "priority", "active"]
    list_editable = ["priority", "active"]
    list_filter = ["active", "kind", "pool"]
    search_fields = ["name", "pattern"]


class AppendOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Records that are evidence: readable, never changed or deleted here."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(RoutingDecision)
class RoutingDecisionAdmin(AppendOnlyAdmin):
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


@admin.register(PromptVersion)
class PromptVersionAdmin(AppendOnlyAdmin):
    list_display = ["__str__", "purpose", "active", "author", "note", "created_at"]
    list_filter = ["purpose", "active"]


@admin.register(ModelVersion)
class ModelVersionAdmin(AppendOnlyAdmin):
    list_display = ["__str__", "active", "threshold", "training_examples", "note", "created_at"]
    exclude = ["artifact"]

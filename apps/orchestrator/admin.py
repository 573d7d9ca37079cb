from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.orchestrator.models import ModelVersion, PromptVersion, RoutingDecision, RoutingRule


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin[RoutingRule]):
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


@admin.register(PromptVersion)
class PromptVersionAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "purpose", "active", "author", "note", "created_at"]
    list_filter = ["purpose", "active"]


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "active", "threshold", "training_examples", "note", "created_at"]
    exclude = ["artifact"]

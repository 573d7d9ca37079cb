"""Routing configuration (rules, editable) and the decision record (read-only). Prompt versions
and their activations are in `prompts/admin.py` (registered here); prompt A/B tests, whose
results rest on audits, in apps/review/prompt_admin.py; local model versions, with training,
in apps/review/training/admin.py."""

from django import forms
from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.orchestrator.models import RoutingDecision, RoutingRule
from apps.orchestrator.prompts import admin as prompts_admin  # noqa: F401  (registers the prompt admins)


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
        "ends_run",
        "dry_run",
    ]
    list_filter = ["tier", "action", "ends_run", "valid", "dry_run", "pool", "model"]
    search_fields = ["request_id", "ticket__id", "reason", "error"]
    date_hierarchy = "created_at"

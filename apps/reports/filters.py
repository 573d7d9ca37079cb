"""Query-string parsing shared by the report pages and the report API, so both read the same
`from`/`to`/`pool` and drill-down parameters the same way."""

from datetime import timedelta
from typing import Any

from django.http import QueryDict
from django.utils import timezone
from rest_framework import serializers

from apps.core.api import ID_MAX
from apps.orchestrator.models import RoutingDecision
from apps.pools.models import Pool
from apps.reports.selectors import DecisionDrill, ReportFilter

# A month of data is what the dashboard is for; a year at most keeps a query bounded.
MAX_DAYS = 366
# `model=` (empty) is a real value: the tiers that call no model.
KEEP_EMPTY = {"model"}


def _present(params: QueryDict | dict[str, Any]) -> dict[str, Any]:
    """Drop empty parameters (an "All pools" select sends `pool=`)."""
    return {key: params[key] for key in params if params[key] != "" or key in KEEP_EMPTY}


class PoolSlugField(serializers.SlugRelatedField[Pool]):
    """A pool by its slug. A value that is no slug is refused before it reaches the database:
    PostgreSQL refuses a NUL character in a query outright (a 500, not a 400)."""

    def to_internal_value(self, data: Any) -> Pool:
        serializers.SlugField().run_validation(data)
        pool: Pool = super().to_internal_value(data)
        return pool


class ReportFilterSerializer(serializers.Serializer[ReportFilter]):
    """`from` and `to` are dates, both included (default: the last 30 days); `pool` a slug."""

    from_ = serializers.DateField(required=False, help_text="First day (default: 29 days ago).")
    to = serializers.DateField(required=False, help_text="Last day, included (default: today).")
    pool = PoolSlugField(
        slug_field="slug",
        queryset=Pool.objects.all(),
        required=False,
        help_text="Only tickets in this pool (default: every pool).",
    )

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        # `from` is a Python keyword: declared as `from_`, read and documented as `from`.
        fields["from"] = fields.pop("from_")
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        end = attrs.get("to") or timezone.localdate()
        start = attrs.get("from") or end - timedelta(days=29)
        if start > end:
            raise serializers.ValidationError({"from": ["Must not be after `to`."]})
        if (end - start).days >= MAX_DAYS:
            raise serializers.ValidationError({"from": [f"At most {MAX_DAYS} days at once."]})
        return {"start": start, "end": end, "pool": attrs.get("pool")}


class DecisionDrillSerializer(serializers.Serializer[DecisionDrill]):
    """What narrows decisions to the rows behind one figure; the summary gives each figure's."""

    day = serializers.DateField(required=False, help_text="Decisions of this day.")
    tier = serializers.ChoiceField(choices=RoutingDecision.Tier.values, required=False)
    model = serializers.CharField(required=False, allow_blank=True, help_text="Empty: no model.")
    action = serializers.ChoiceField(choices=RoutingDecision.Action.values, required=False)
    final = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Only each ticket's outcome: its latest decision that ended a routing run.",
    )
    llm_call = serializers.BooleanField(required=False, default=False)
    escalated = serializers.BooleanField(required=False, default=False)
    rerouted = serializers.BooleanField(required=False, default=False)
    conf_min = serializers.FloatField(required=False, min_value=0, max_value=1)
    conf_max = serializers.FloatField(required=False, min_value=0, max_value=1)
    truth = serializers.CharField(required=False, help_text='Labelled pool slug, or "none".')
    predicted = serializers.CharField(required=False, help_text='Decision pool slug, or "none".')
    audited = serializers.BooleanField(required=False, default=False)
    review_open = serializers.BooleanField(required=False, default=False)
    ticket_day = serializers.DateField(required=False)
    ticket_pool = serializers.CharField(required=False, help_text='Ticket pool slug, or "none".')
    sla_breached = serializers.BooleanField(required=False, default=False)
    ticket = serializers.IntegerField(required=False, min_value=1, max_value=ID_MAX)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attribute = {param: name for name, param in DecisionDrill.PARAMS.items()}
        return {"drill": DecisionDrill(**{attribute.get(k, k): v for k, v in attrs.items()})}


def report_filter_parse(params: QueryDict | dict[str, Any]) -> ReportFilter:
    """The period and pool from a query string; raises DRF's ValidationError."""
    serializer = ReportFilterSerializer(data=_present(params))
    serializer.is_valid(raise_exception=True)
    return ReportFilter(**serializer.validated_data)


def decision_drill_parse(params: QueryDict | dict[str, Any]) -> DecisionDrill:
    """The drill-down parameters from a query string; raises DRF's ValidationError."""
    serializer = DecisionDrillSerializer(data=_present(params))
    serializer.is_valid(raise_exception=True)
    drill: DecisionDrill = serializer.validated_data["drill"]
    return drill

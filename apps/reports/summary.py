"""The manager dashboard's summary: every figure of docs/reports.md for a period and pool, one
section each, as the dashboard and `GET /api/v1/reports/summary/` both render it. The scopes
the figures count and the drill-down lists behind them are in `apps/reports/selectors.py`; the
sections' shapes in `apps/reports/sections.py`.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.orchestrator.models import RoutingDecision
from apps.pools.models import Pool
from apps.reports.sections import (
    AccuracySection,
    ConfidenceSection,
    ConfidenceTier,
    ConfusionCell,
    ConfusionSection,
    CostByTierModel,
    CostDay,
    CostSection,
    Estimate,
    LatencyRow,
    ReviewQueueSection,
    RoutingSection,
    Share,
    SlaPool,
    SlaSection,
    TicketDay,
    TicketsSection,
    TierShare,
)
from apps.reports.selectors import (
    CONFIDENCE_BINS,
    CONFIDENCE_TIERS,
    LATENCY_TIERS,
    LLM_TIERS,
    NONE,
    DecisionDrill,
    ReportFilter,
    percentile,
    report_decision_scope,
    report_outcome_list,
    report_ticket_scope,
    sla_breached_tickets,
    ticket_has_decision,
)
from apps.review.models import RoutingLabel
from apps.review.selectors import (
    AccuracyEstimate,
    AccuracyReport,
    ReviewQueueStats,
    review_queue_stats,
    routing_accuracy,
)

Tier = RoutingDecision.Tier
Action = RoutingDecision.Action


@dataclass(frozen=True, kw_only=True)
class ReportSummary:
    """Every figure of the dashboard; each carries the drill-down parameters behind it."""

    filters: ReportFilter
    tickets: TicketsSection
    routing: RoutingSection
    cost: CostSection
    confidence: ConfidenceSection
    latency: list[LatencyRow]
    review_queue: ReviewQueueSection
    accuracy: AccuracySection
    confusion: ConfusionSection
    sla: SlaSection
    generated_at: datetime = field(default_factory=timezone.now)


def _usd(value: Decimal | None) -> float:
    return float(value or 0)


def _tickets_section(filters: ReportFilter) -> TicketsSection:
    rows = (
        report_ticket_scope(filters=filters)
        .annotate(day=TruncDate("created_at"))
        .values("day", "pool__slug")
        .annotate(n=Count("id"))
        .order_by("day", "pool__slug")
    )
    per_day: list[TicketDay] = [
        {
            "day": row["day"].isoformat(),
            "pool": row["pool__slug"],
            "count": row["n"],
            "drill": DecisionDrill(
                ticket_day=row["day"], ticket_pool=row["pool__slug"] or NONE
            ).as_params(),
        }
        for row in rows
    ]
    return {"total": sum(row["count"] for row in per_day), "per_day": per_day}


def _tier_share(tier: str, share: Share) -> TierShare:
    return {
        "tier": tier,
        "count": share.count,
        "total": share.total,
        "share": share.share,
        "drill": share.drill,
    }


def _routing_section(filters: ReportFilter) -> RoutingSection:
    finals = report_outcome_list(filters=filters)
    counts = finals.aggregate(
        total=Count("id"),
        llm_call=Count("id", filter=Q(ticket_has_decision(tier__in=LLM_TIERS))),
        escalated=Count("id", filter=Q(ticket_has_decision(tier=Tier.ESCALATION))),
        routed=Count("id", filter=Q(action=Action.ROUTE)),
        review=Count("id", filter=Q(action=Action.REVIEW)),
        rerouted=Count(
            "id",
            filter=Q(action=RoutingDecision.Action.ROUTE)
            & Q(
                Exists(
                    RoutingLabel.objects.filter(
                        ticket=OuterRef("ticket"), source=RoutingLabel.Source.REROUTE
                    )
                )
            ),
        ),
    )
    total = counts["total"]
    by_tier: dict[str, int] = defaultdict(int)
    routed_by: dict[str, int] = {}
    for row in finals.values("tier", "action").annotate(n=Count("id")):
        by_tier[row["tier"]] += row["n"]
        if row["action"] == Action.ROUTE:
            routed_by[row["tier"]] = row["n"]

    def tier_share(tier: RoutingDecision.Tier) -> Share:
        return Share.of(by_tier.get(tier, 0), total, DecisionDrill(ticket_outcome=True, tier=tier))

    def routed_share(tier: RoutingDecision.Tier) -> Share:
        # A tier "hits" when it routed the ticket to a pool (the local model may also send a
        # ticket to review as "no pool fits": that counts as review).
        drill = DecisionDrill(ticket_outcome=True, tier=tier, action=Action.ROUTE)
        return Share.of(routed_by.get(tier, 0), total, drill)

    return {
        "tickets": total,
        "drill": DecisionDrill(ticket_outcome=True).as_params(),
        "by_final_tier": [
            _tier_share(tier.value, tier_share(tier)) for tier in Tier if by_tier.get(tier)
        ],
        "rule_hit": routed_share(Tier.RULES),
        "cache_hit": routed_share(Tier.CACHE),
        "local": routed_share(Tier.LOCAL),
        "llm_call": Share.of(
            counts["llm_call"], total, DecisionDrill(ticket_outcome=True, llm_call=True)
        ),
        "escalated_to_model": Share.of(
            counts["escalated"], total, DecisionDrill(ticket_outcome=True, escalated=True)
        ),
        "escalated_to_review": Share.of(
            counts["review"], total, DecisionDrill(ticket_outcome=True, action=Action.REVIEW)
        ),
        "reroute": Share.of(
            counts["rerouted"],
            counts["routed"],
            DecisionDrill(ticket_outcome=True, action=RoutingDecision.Action.ROUTE, rerouted=True),
        ),
    }


def _cost_section(filters: ReportFilter) -> CostSection:
    decisions = report_decision_scope(filters=filters)
    sums = {
        "cost": Sum("cost_usd"),
        "input_tokens": Sum("input_tokens"),
        "output_tokens": Sum("output_tokens"),
        "cache_read_tokens": Sum("cache_read_tokens"),
        "cache_creation_tokens": Sum("cache_creation_tokens"),
    }
    totals = decisions.aggregate(
        decisions=Count("id"), tickets=Count("ticket", distinct=True), **sums
    )
    per_day: list[CostDay] = [
        {
            "day": row["day"].isoformat(),
            "decisions": row["n"],
            "cost_usd": _usd(row["cost"]),
            "drill": DecisionDrill(day=row["day"]).as_params(),
        }
        for row in decisions.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"), cost=Sum("cost_usd"))
        .order_by("day")
    ]
    by_tier_model: list[CostByTierModel] = []
    for row in (
        decisions.values("tier", "model")
        .annotate(n=Count("id"), tickets=Count("ticket", distinct=True), **sums)
        .order_by("tier", "model")
    ):
        cost = _usd(row["cost"])
        by_tier_model.append(
            {
                "tier": row["tier"],
                "model": row["model"],
                "decisions": row["n"],
                "tickets": row["tickets"],
                "cost_usd": cost,
                "cost_per_ticket_usd": cost / row["tickets"] if row["tickets"] else None,
                "input_tokens": row["input_tokens"] or 0,
                "output_tokens": row["output_tokens"] or 0,
                "cache_read_tokens": row["cache_read_tokens"] or 0,
                "cache_creation_tokens": row["cache_creation_tokens"] or 0,
                "drill": DecisionDrill(tier=row["tier"], model=row["model"]).as_params(),
            }
        )
    cost = _usd(totals["cost"])
    return {
        "decisions": totals["decisions"],
        "tickets": totals["tickets"],
        "total_usd": cost,
        "per_ticket_usd": cost / totals["tickets"] if totals["tickets"] else None,
        "drill": DecisionDrill().as_params(),
        "tokens": {
            name: totals[name] or 0
            for name in (
                "input_tokens",
                "output_tokens",
                "cache_read_tokens",
                "cache_creation_tokens",
            )
        },
        "per_day": per_day,
        "by_tier_model": by_tier_model,
    }


def _bin_edges() -> list[tuple[float, float]]:
    return [(i / CONFIDENCE_BINS, (i + 1) / CONFIDENCE_BINS) for i in range(CONFIDENCE_BINS)]


def _confidence_section(filters: ReportFilter) -> ConfidenceSection:
    decisions = report_decision_scope(filters=filters).filter(
        tier__in=CONFIDENCE_TIERS, confidence__isnull=False
    )
    edges = _bin_edges()
    bins = {
        f"b{i}": Count(
            "id",
            filter=Q(confidence__gte=low)
            & (Q(confidence__lt=high) if high < 1 else Q(confidence__lte=high)),
        )
        for i, (low, high) in enumerate(edges)
    }
    counts = {row["tier"]: row for row in decisions.values("tier").annotate(**bins)}
    tiers: list[ConfidenceTier] = []
    for tier in CONFIDENCE_TIERS:
        row = counts.get(tier)
        if row is None:
            continue
        tiers.append(
            {
                "tier": tier,
                "bins": [
                    {
                        "low": low,
                        "high": high,
                        "count": row[f"b{i}"],
                        "drill": DecisionDrill(tier=tier, conf_min=low, conf_max=high).as_params(),
                    }
                    for i, (low, high) in enumerate(edges)
                ],
            }
        )
    return {"edges": [low for low, _ in edges] + [1.0], "tiers": tiers}


def _latency_section(filters: ReportFilter) -> list[LatencyRow]:
    # Percentiles need the values: read (tier, latency) in chunks, never whole rows.
    values: dict[str, list[float]] = defaultdict(list)
    rows: Iterable[tuple[str, float]] = (
        report_decision_scope(filters=filters)
        .filter(tier__in=LATENCY_TIERS)
        .values_list("tier", "latency_ms")
        .iterator(chunk_size=5000)
    )
    for tier, latency in rows:
        values[tier].append(latency)
    result: list[LatencyRow] = []
    for tier in LATENCY_TIERS:
        if tier not in values:
            continue
        ordered = sorted(values[tier])
        result.append(
            {
                "tier": tier,
                "n": len(ordered),
                "p50_ms": percentile(ordered, 50),
                "p95_ms": percentile(ordered, 95),
                "p99_ms": percentile(ordered, 99),
                "drill": DecisionDrill(tier=tier).as_params(),
            }
        )
    return result


def _review_queue_section(stats: ReviewQueueStats) -> ReviewQueueSection:
    def seconds(age: timedelta | None) -> float | None:
        return age.total_seconds() if age is not None else None

    return {
        "open": stats.open,
        "oldest_open_age_seconds": seconds(stats.oldest_open_age),
        "kinds": {
            kind: {
                "open": kind_stats.open,
                "by_reason": kind_stats.by_reason,
                "oldest_open_age_seconds": seconds(kind_stats.oldest_open_age),
            }
            for kind, kind_stats in stats.kinds.items()
        },
        "drill": DecisionDrill(review_open=True).as_params(),
    }


def _estimate(estimate: AccuracyEstimate) -> Estimate:
    return {
        "n": estimate.n,
        "correct": estimate.correct,
        "accuracy": estimate.accuracy,
        "low": estimate.low,
        "high": estimate.high,
    }


def _accuracy_section(report: AccuracyReport, pool: Pool | None) -> AccuracySection:
    weighted = report.weighted
    # With a pool: the automatic routes *to* it (the decision's pool, not the ticket's pool
    # now, which a wrong route's correction changes), so the drill-down names `predicted`.
    drill = DecisionDrill(audited=True, predicted=pool.slug if pool else None)
    return {
        "scope": f"routes to {pool.name}" if pool else "all pools",
        "pooled": _estimate(report.pooled),
        "weighted": {
            "accuracy": weighted.accuracy,
            "low": weighted.low,
            "high": weighted.high,
            "effective_n": weighted.effective_n,
            "volume": weighted.volume,
            "covered_volume": weighted.covered_volume,
        },
        "tiers": [
            {"tier": row.tier, "volume": row.volume, **_estimate(row)} for row in report.tiers
        ],
        "drill": {**drill.as_params(), "pool": ""},
    }


def _confusion_section(filters: ReportFilter) -> ConfusionSection:
    later_label = RoutingLabel.objects.filter(decision=OuterRef("decision"), id__gt=OuterRef("id"))
    labels = (
        RoutingLabel.objects.filter(
            decision__in=report_decision_scope(filters=filters).values("pk")
        )
        .filter(~Exists(later_label))
        .values("pool__slug", "decision__pool__slug")
        .annotate(n=Count("id"))
        .order_by()
    )
    cells: list[ConfusionCell] = []
    names: set[str] = set()
    for row in labels:
        truth = row["pool__slug"] or NONE
        predicted = row["decision__pool__slug"] or NONE
        names.update((truth, predicted))
        cells.append(
            {
                "truth": truth,
                "predicted": predicted,
                "count": row["n"],
                "drill": DecisionDrill(truth=truth, predicted=predicted).as_params(),
            }
        )
    cells.sort(key=lambda cell: (cell["truth"], cell["predicted"]))
    return {
        "labels": sorted(names, key=lambda name: (name == NONE, name)),
        "cells": cells,
        "labelled": sum(cell["count"] for cell in cells),
    }


def _sla_section(filters: ReportFilter) -> SlaSection:
    rows = (
        sla_breached_tickets(filters=filters)
        .values("pool__slug")
        .annotate(n=Count("id"))
        .order_by("pool__slug")
    )
    by_pool: list[SlaPool] = [{"pool": row["pool__slug"], "count": row["n"]} for row in rows]
    return {
        "breaches": sum(row["count"] for row in by_pool),
        "by_pool": by_pool,
        "drill": DecisionDrill(sla_breached=True).as_params(),
    }


def report_summary(*, filters: ReportFilter, now: datetime | None = None) -> ReportSummary:
    """Every figure of the manager dashboard for the period and pool (docs/reports.md)."""
    return ReportSummary(
        filters=filters,
        tickets=_tickets_section(filters),
        routing=_routing_section(filters),
        cost=_cost_section(filters),
        confidence=_confidence_section(filters),
        latency=_latency_section(filters),
        review_queue=_review_queue_section(review_queue_stats(now=now)),
        accuracy=_accuracy_section(
            routing_accuracy(since=filters.since, until=filters.until, pool=filters.pool),
            filters.pool,
        ),
        confusion=_confusion_section(filters),
        sla=_sla_section(filters),
        generated_at=now or timezone.now(),
    )


def report_summary_data(summary: ReportSummary) -> dict[str, Any]:
    """The summary as plain JSON-ready data (Share objects flattened)."""

    def plain(value: Any) -> Any:
        if isinstance(value, Share):
            return plain(value.__dict__)
        if isinstance(value, Mapping):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, list):
            return [plain(item) for item in value]
        return value

    filters = summary.filters
    return {
        "from": filters.start.isoformat(),
        "to": filters.end.isoformat(),
        "pool": filters.pool.slug if filters.pool else None,
        "generated_at": summary.generated_at.isoformat(),
        "tickets": plain(summary.tickets),
        "routing": plain(summary.routing),
        "cost": plain(summary.cost),
        "confidence": plain(summary.confidence),
        "latency": plain(summary.latency),
        "review_queue": plain(summary.review_queue),
        "accuracy": plain(summary.accuracy),
        "confusion": plain(summary.confusion),
        "sla": plain(summary.sla),
    }

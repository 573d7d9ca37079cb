"""Read-side of the manager reports: one summary that the dashboard and
`GET /api/v1/reports/summary/` both render, and the drill-down lists behind each figure.

Scopes (docs/reports.md):
- decisions: attempts recorded for real tickets (no dry runs) created in the period, of tickets in
  the pool filter (`Ticket.pool`);
- routed tickets: tickets whose latest final decision falls in the period — a ticket's routing
  counts once, by that decision;
- tickets: tickets created in the period (SLA breaches: breached in the period).
"""

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.orchestrator.models import RoutingDecision
from apps.pools.models import Pool
from apps.review.models import ReviewItem, RoutingLabel
from apps.review.selectors import (
    AccuracyReport,
    ReviewQueueStats,
    automatic_decision_list,
    review_queue_stats,
    routing_accuracy,
)
from apps.tickets.models import Ticket

Tier = RoutingDecision.Tier
Action = RoutingDecision.Action
# Tiers whose attempts do work worth timing; review/clarify/handoff rows are bookkeeping.
LATENCY_TIERS: tuple[str, ...] = (
    Tier.VALIDATION,
    Tier.RULES,
    Tier.CACHE,
    Tier.LOCAL,
    Tier.LLM,
    Tier.ESCALATION,
)
# Tiers whose confidence is a model's own estimate (rules say 1.0, cache and clarify copy one).
CONFIDENCE_TIERS: tuple[str, ...] = (Tier.LOCAL, Tier.LLM, Tier.ESCALATION)
LLM_TIERS: tuple[str, ...] = (Tier.LLM, Tier.ESCALATION)
CONFIDENCE_BINS = 10
PERCENTILES = (50, 95, 99)
# A drill-down value meaning "no pool" (a review outcome, a "no pool fits" verdict).
NONE = "none"


@dataclass(frozen=True, kw_only=True)
class ReportFilter:
    """The dashboard's filters: days `start`..`end` (both included) and optionally one pool."""

    start: date
    end: date
    pool: Pool | None = None

    @property
    def since(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.start, time.min))

    @property
    def until(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.end + timedelta(days=1), time.min))

    def as_params(self) -> dict[str, str]:
        params = {"from": self.start.isoformat(), "to": self.end.isoformat()}
        if self.pool is not None:
            params["pool"] = self.pool.slug
        return params


def report_filter_default(*, today: date | None = None, pool: Pool | None = None) -> ReportFilter:
    """The last 30 days, today included."""
    today = today or timezone.localdate()
    return ReportFilter(start=today - timedelta(days=29), end=today, pool=pool)


@dataclass(frozen=True, kw_only=True)
class DecisionDrill:
    """What narrows the report's decisions to the rows behind one figure (all optional)."""

    day: date | None = None  # decision date
    tier: str | None = None
    model: str | None = None
    action: str | None = None
    final: bool = False  # only each routed ticket's latest final decision
    llm_call: bool = False  # tickets with any router/escalation LLM call
    escalated: bool = False  # tickets the larger model re-evaluated
    rerouted: bool = False  # tickets an agent moved to another pool
    conf_min: float | None = None
    conf_max: float | None = None  # exclusive, except 1.0
    truth: str | None = None  # newest label's pool slug, or NONE
    predicted: str | None = None  # the decision's pool slug, or NONE
    audited: bool = False  # automatic decisions with a resolved audit (accuracy's sample)
    review_open: bool = False  # decisions of open review items (the queue now, any period)
    ticket_day: date | None = None  # latest final decisions of tickets created that day
    ticket_pool: str | None = None  # the ticket's pool slug, or NONE
    sla_breached: bool = False  # latest final decisions of tickets breached in the period
    ticket: int | None = None

    def as_params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        for name, value in self.__dict__.items():
            if value is None or value is False:
                continue
            if value is True:
                params[name] = "1"
            elif isinstance(value, date):
                params[name] = value.isoformat()
            else:
                params[name] = str(value)
        return params


# -- scopes -------------------------------------------------------------------------------------


def report_decision_scope(*, filters: ReportFilter) -> QuerySet[RoutingDecision]:
    """Decisions of real tickets (no dry runs) created in the period, of tickets in the pool."""
    decisions = RoutingDecision.objects.filter(
        dry_run=False,
        ticket__isnull=False,
        created_at__gte=filters.since,
        created_at__lt=filters.until,
    )
    if filters.pool is not None:
        decisions = decisions.filter(ticket__pool=filters.pool)
    return decisions.order_by()


def _later_final() -> QuerySet[RoutingDecision]:
    return RoutingDecision.objects.filter(
        ticket=OuterRef("ticket"), final=True, dry_run=False, id__gt=OuterRef("id")
    )


def _latest_finals(decisions: QuerySet[RoutingDecision]) -> QuerySet[RoutingDecision]:
    # Decisions are append-only, so a larger id is a later decision.
    return decisions.filter(final=True).filter(~Exists(_later_final()))


def report_final_decisions(*, filters: ReportFilter) -> QuerySet[RoutingDecision]:
    """Each routed ticket's latest final decision, when it falls in the period."""
    return _latest_finals(report_decision_scope(filters=filters))


def report_ticket_scope(*, filters: ReportFilter) -> QuerySet[Ticket]:
    """Tickets created in the period, in the pool."""
    tickets = Ticket.objects.filter(created_at__gte=filters.since, created_at__lt=filters.until)
    if filters.pool is not None:
        tickets = tickets.filter(pool=filters.pool)
    return tickets.order_by()


def _sla_breached_tickets(*, filters: ReportFilter) -> QuerySet[Ticket]:
    tickets = Ticket.objects.filter(
        sla_breached_at__gte=filters.since, sla_breached_at__lt=filters.until
    )
    if filters.pool is not None:
        tickets = tickets.filter(pool=filters.pool)
    return tickets.order_by()


def _ticket_has_decision(**conditions: Any) -> Exists:
    return Exists(
        RoutingDecision.objects.filter(ticket=OuterRef("ticket"), dry_run=False, **conditions)
    )


def _newest_label_pool() -> Subquery:
    return Subquery(
        RoutingLabel.objects.filter(decision=OuterRef("pk"))
        .order_by("-id")
        .values("pool__slug")[:1]
    )


def _pool_condition(field_name: str, value: str) -> Q:
    if value == NONE:
        return Q(**{f"{field_name}__isnull": True})
    return Q(**{field_name: value})


def report_decision_list(
    *, filters: ReportFilter, drill: DecisionDrill | None = None
) -> QuerySet[RoutingDecision]:
    """The decision receipts behind one figure of the summary, newest first."""
    drill = drill or DecisionDrill()
    real = RoutingDecision.objects.filter(dry_run=False, ticket__isnull=False)
    if drill.review_open:
        # The queue is what waits now: neither the period nor the pool applies.
        open_items = ReviewItem.objects.filter(
            status=ReviewItem.Status.OPEN, decision=OuterRef("pk")
        )
        decisions = real.filter(Exists(open_items))
    elif drill.ticket_day is not None or drill.sla_breached:
        # Ticket figures: the period applies to the ticket, the decision is its latest final.
        if drill.sla_breached:
            tickets = _sla_breached_tickets(filters=filters)
        else:
            assert drill.ticket_day is not None
            day = ReportFilter(start=drill.ticket_day, end=drill.ticket_day, pool=filters.pool)
            tickets = report_ticket_scope(filters=day)
        decisions = _latest_finals(real.filter(ticket__in=tickets.values("pk")))
    else:
        decisions = report_decision_scope(filters=filters)
        if drill.final:
            decisions = _latest_finals(decisions)
    if drill.day is not None:
        decisions = decisions.filter(created_at__date=drill.day)
    if drill.tier:
        decisions = decisions.filter(tier=drill.tier)
    if drill.model is not None:
        decisions = decisions.filter(model=drill.model)
    if drill.action:
        decisions = decisions.filter(action=drill.action)
    if drill.llm_call:
        decisions = decisions.filter(_ticket_has_decision(tier__in=LLM_TIERS))
    if drill.escalated:
        decisions = decisions.filter(_ticket_has_decision(tier=Tier.ESCALATION))
    if drill.rerouted:
        reroutes = RoutingLabel.objects.filter(
            ticket=OuterRef("ticket"), source=RoutingLabel.Source.REROUTE
        )
        decisions = decisions.filter(Exists(reroutes))
    if drill.conf_min is not None:
        decisions = decisions.filter(confidence__gte=drill.conf_min)
    if drill.conf_max is not None:
        decisions = decisions.filter(
            Q(confidence__lt=drill.conf_max)
            if drill.conf_max < 1
            else Q(confidence__lte=drill.conf_max)
        )
    if drill.truth is not None:
        decisions = decisions.annotate(
            labelled=Exists(RoutingLabel.objects.filter(decision=OuterRef("pk"))),
            truth=_newest_label_pool(),
        ).filter(Q(labelled=True) & _pool_condition("truth", drill.truth))
    if drill.predicted is not None:
        decisions = decisions.filter(_pool_condition("pool__slug", drill.predicted))
    if drill.audited:
        audits = ReviewItem.objects.filter(
            kind=ReviewItem.Kind.AUDIT, status=ReviewItem.Status.RESOLVED, decision=OuterRef("pk")
        )
        sample = automatic_decision_list(since=filters.since, until=filters.until)
        decisions = decisions.filter(Exists(audits), pk__in=sample.values("pk"))
    if drill.ticket_pool is not None:
        decisions = decisions.filter(_pool_condition("ticket__pool__slug", drill.ticket_pool))
    if drill.ticket is not None:
        decisions = decisions.filter(ticket_id=drill.ticket)
    return decisions.select_related("pool", "prompt_version", "ticket__pool").order_by(
        "-created_at", "-id"
    )


def report_ticket_list(*, filters: ReportFilter) -> QuerySet[Ticket]:
    """Tickets created in the period (pool filter), oldest first, with their routing cost and
    latest final decision's tier and confidence."""
    real = RoutingDecision.objects.filter(ticket=OuterRef("pk"), dry_run=False)
    latest = real.filter(final=True).order_by("-id")
    cost = real.order_by().values("ticket").annotate(total=Sum("cost_usd")).values("total")
    return (
        report_ticket_scope(filters=filters)
        .select_related("pool")
        .annotate(
            final_tier=Subquery(latest.values("tier")[:1]),
            final_confidence=Subquery(latest.values("confidence")[:1]),
            routing_cost_usd=Subquery(cost),
            decision_count=Subquery(
                real.order_by().values("ticket").annotate(n=Count("id")).values("n")
            ),
        )
        .order_by("created_at", "id")
    )


# -- the summary --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Share:
    """`count` of `total`; `share` is None when there is nothing to divide by."""

    count: int
    total: int
    share: float | None
    drill: dict[str, str]

    @classmethod
    def of(cls, count: int, total: int, drill: DecisionDrill) -> "Share":
        return cls(
            count=count,
            total=total,
            share=count / total if total else None,
            drill=drill.as_params(),
        )


@dataclass(frozen=True, kw_only=True)
class ReportSummary:
    """Every figure of the dashboard; each carries the drill-down parameters behind it."""

    filters: ReportFilter
    tickets: dict[str, Any]
    routing: dict[str, Any]
    cost: dict[str, Any]
    confidence: dict[str, Any]
    latency: list[dict[str, Any]]
    review_queue: dict[str, Any]
    accuracy: dict[str, Any]
    confusion: dict[str, Any]
    sla: dict[str, Any]
    generated_at: datetime = field(default_factory=timezone.now)


def percentile(ordered: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list: the smallest value with at least p% of the
    values at or below it; None for no values."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _usd(value: Decimal | None) -> float:
    return float(value or 0)


def _tickets_section(filters: ReportFilter) -> dict[str, Any]:
    rows = (
        report_ticket_scope(filters=filters)
        .annotate(day=TruncDate("created_at"))
        .values("day", "pool__slug")
        .annotate(n=Count("id"))
        .order_by("day", "pool__slug")
    )
    per_day = [
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


def _routing_section(filters: ReportFilter) -> dict[str, Any]:
    finals = report_final_decisions(filters=filters)
    counts = finals.aggregate(
        total=Count("id"),
        llm_call=Count("id", filter=Q(_ticket_has_decision(tier__in=LLM_TIERS))),
        escalated=Count("id", filter=Q(_ticket_has_decision(tier=Tier.ESCALATION))),
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

    def tier_share(tier: str) -> Share:
        return Share.of(by_tier.get(tier, 0), total, DecisionDrill(final=True, tier=tier))

    def routed_share(tier: str) -> Share:
        # A tier "hits" when it routed the ticket to a pool (the local model may also send a
        # ticket to review as "no pool fits": that counts as review).
        drill = DecisionDrill(final=True, tier=tier, action=Action.ROUTE)
        return Share.of(routed_by.get(tier, 0), total, drill)

    return {
        "tickets": total,
        "drill": DecisionDrill(final=True).as_params(),
        "by_final_tier": [
            {"tier": tier, **tier_share(tier).__dict__} for tier in Tier.values if by_tier.get(tier)
        ],
        "rule_hit": routed_share(Tier.RULES),
        "cache_hit": routed_share(Tier.CACHE),
        "local": routed_share(Tier.LOCAL),
        "llm_call": Share.of(counts["llm_call"], total, DecisionDrill(final=True, llm_call=True)),
        "escalated_to_model": Share.of(
            counts["escalated"], total, DecisionDrill(final=True, escalated=True)
        ),
        "escalated_to_review": Share.of(
            counts["review"], total, DecisionDrill(final=True, action=Action.REVIEW)
        ),
        "reroute": Share.of(
            counts["rerouted"],
            counts["routed"],
            DecisionDrill(final=True, action=RoutingDecision.Action.ROUTE, rerouted=True),
        ),
    }


def _cost_section(filters: ReportFilter) -> dict[str, Any]:
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
    per_day = [
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
    by_tier_model = []
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


def _confidence_section(filters: ReportFilter) -> dict[str, Any]:
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
    tiers = []
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


def _latency_section(filters: ReportFilter) -> list[dict[str, Any]]:
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
    result = []
    for tier in LATENCY_TIERS:
        if tier not in values:
            continue
        ordered = sorted(values[tier])
        result.append(
            {
                "tier": tier,
                "n": len(ordered),
                **{f"p{p}_ms": percentile(ordered, p) for p in PERCENTILES},
                "drill": DecisionDrill(tier=tier).as_params(),
            }
        )
    return result


def _review_queue_section(stats: ReviewQueueStats) -> dict[str, Any]:
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


def _estimate(estimate: Any) -> dict[str, Any]:
    return {
        "n": estimate.n,
        "correct": estimate.correct,
        "accuracy": estimate.accuracy,
        "low": estimate.low,
        "high": estimate.high,
    }


def _accuracy_section(report: AccuracyReport, pool: Pool | None) -> dict[str, Any]:
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


def _confusion_section(filters: ReportFilter) -> dict[str, Any]:
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
    cells = []
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


def _sla_section(filters: ReportFilter) -> dict[str, Any]:
    rows = (
        _sla_breached_tickets(filters=filters)
        .values("pool__slug")
        .annotate(n=Count("id"))
        .order_by("pool__slug")
    )
    by_pool = [{"pool": row["pool__slug"], "count": row["n"]} for row in rows]
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


# Reports read routing decisions: whoever may view decision rows (Managers in seed_demo) may
# view the reports built on them.
REPORTS_PERMISSION = "reports.view_reports"


def user_can_view_reports(user: Any) -> bool:
    """Staff with the `reports.view_reports` permission (the Managers group) and superusers."""
    return bool(
        user.is_authenticated
        and user.is_active
        and user.is_staff
        and (user.is_superuser or user.has_perm(REPORTS_PERMISSION))
    )


def decision_trails(*, request_ids: Iterable[Any]) -> dict[Any, list[RoutingDecision]]:
    """Every decision of the given routing runs (request ids), in order: their tier trails."""
    trails: dict[Any, list[RoutingDecision]] = defaultdict(list)
    for decision in (
        RoutingDecision.objects.filter(request_id__in=set(request_ids))
        .select_related("pool")
        .order_by("id")
    ):
        trails[decision.request_id].append(decision)
    return trails

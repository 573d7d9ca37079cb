"""Read-side of the manager reports: the filters, the scopes the figures count and the
drill-down lists behind each figure (the summary itself is `apps/reports/summary.py`).

Scopes (docs/reports.md):
- decisions: attempts recorded for real tickets (no dry runs) created in the period, of tickets in
  the pool filter (`Ticket.pool`);
- routed tickets: tickets whose outcome (latest deciding decision,
  `RoutingDecisionQuerySet.ticket_outcomes`) falls in the period — a ticket's routing counts
  once, by that decision;
- tickets: tickets created in the period (SLA breaches: breached in the period).
"""

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, ClassVar

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from apps.orchestrator.models import RoutingDecision, RoutingDecisionQuerySet
from apps.pools.models import Pool
from apps.review.models import ReviewItem, RoutingLabel
from apps.review.selectors import (
    automatic_decision_list,
)
from apps.tickets.models import Ticket

Tier = RoutingDecision.Tier
Action = RoutingDecision.Action
# Tiers whose attempts do work worth timing; review/clarify/handoff rows are bookkeeping.
LATENCY_TIERS: tuple[RoutingDecision.Tier, ...] = (
    Tier.VALIDATION,
    Tier.RULES,
    Tier.CACHE,
    Tier.LOCAL,
    Tier.LLM,
    Tier.ESCALATION,
)
# Tiers whose confidence is a model's own estimate (rules say 1.0, cache and clarify copy one).
CONFIDENCE_TIERS: tuple[RoutingDecision.Tier, ...] = (Tier.LOCAL, Tier.LLM, Tier.ESCALATION)
LLM_TIERS: tuple[RoutingDecision.Tier, ...] = (Tier.LLM, Tier.ESCALATION)
CONFIDENCE_BINS = 10
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
    tier: RoutingDecision.Tier | None = None
    model: str | None = None
    action: RoutingDecision.Action | None = None
    ticket_outcome: bool = False  # only each routed ticket's outcome (query parameter `final`)
    llm_call: bool = False  # tickets with any router/escalation LLM call
    escalated: bool = False  # tickets the larger model re-evaluated
    rerouted: bool = False  # tickets an agent moved to another pool
    conf_min: float | None = None
    conf_max: float | None = None  # exclusive, except 1.0
    truth: str | None = None  # newest label's pool slug, or NONE
    predicted: str | None = None  # the decision's pool slug, or NONE
    audited: bool = False  # automatic decisions with a resolved audit (accuracy's sample)
    review_open: bool = False  # decisions of open review items (the queue now, any period)
    ticket_day: date | None = None  # outcomes of tickets created that day
    ticket_pool: str | None = None  # the ticket's pool slug, or NONE
    sla_breached: bool = False  # outcomes of tickets breached in the period
    ticket: int | None = None

    # Attributes whose query parameter (a documented contract) has another name.
    PARAMS: ClassVar[dict[str, str]] = {"ticket_outcome": "final"}

    def as_params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        for attribute, value in self.__dict__.items():
            name = self.PARAMS.get(attribute, attribute)
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


def report_decision_scope(*, filters: ReportFilter) -> RoutingDecisionQuerySet:
    """Decisions of real tickets (no dry runs) created in the period, of tickets in the pool."""
    decisions = RoutingDecision.objects.real().in_window(since=filters.since, until=filters.until)
    if filters.pool is not None:
        decisions = decisions.filter(ticket__pool=filters.pool)
    return decisions.order_by()


def report_outcome_list(*, filters: ReportFilter) -> RoutingDecisionQuerySet:
    """Each routed ticket's outcome (its latest deciding decision), when it falls in the period."""
    return report_decision_scope(filters=filters).ticket_outcomes()


def report_ticket_scope(*, filters: ReportFilter) -> QuerySet[Ticket]:
    """Tickets created in the period, in the pool."""
    tickets = Ticket.objects.filter(created_at__gte=filters.since, created_at__lt=filters.until)
    if filters.pool is not None:
        tickets = tickets.filter(pool=filters.pool)
    return tickets.order_by()


def sla_breached_tickets(*, filters: ReportFilter) -> QuerySet[Ticket]:
    """Tickets whose first-response SLA was breached in the period, in the pool."""
    tickets = Ticket.objects.filter(
        sla_breached_at__gte=filters.since, sla_breached_at__lt=filters.until
    )
    if filters.pool is not None:
        tickets = tickets.filter(pool=filters.pool)
    return tickets.order_by()


def ticket_has_decision(**conditions: Any) -> Exists:
    """Whether the decision's ticket has a real decision matching `conditions`."""
    return Exists(RoutingDecision.objects.real().filter(ticket=OuterRef("ticket"), **conditions))


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
    real = RoutingDecision.objects.real()
    if drill.review_open:
        # The queue is what waits now: neither the period nor the pool applies.
        open_items = ReviewItem.objects.filter(
            status=ReviewItem.Status.OPEN, decision=OuterRef("pk")
        )
        decisions = real.filter(Exists(open_items))
    elif drill.ticket_day is not None or drill.sla_breached:
        # Ticket figures: the period applies to the ticket, the decision is its outcome.
        if drill.sla_breached:
            tickets = sla_breached_tickets(filters=filters)
        else:
            assert drill.ticket_day is not None
            day = ReportFilter(start=drill.ticket_day, end=drill.ticket_day, pool=filters.pool)
            tickets = report_ticket_scope(filters=day)
        decisions = real.filter(ticket__in=tickets.values("pk")).ticket_outcomes()
    else:
        decisions = report_decision_scope(filters=filters)
        if drill.ticket_outcome:
            decisions = decisions.ticket_outcomes()
    if drill.day is not None:
        decisions = decisions.filter(created_at__date=drill.day)
    if drill.tier:
        decisions = decisions.filter(tier=drill.tier)
    if drill.model is not None:
        decisions = decisions.filter(model=drill.model)
    if drill.action:
        decisions = decisions.filter(action=drill.action)
    if drill.llm_call:
        decisions = decisions.filter(ticket_has_decision(tier__in=LLM_TIERS))
    if drill.escalated:
        decisions = decisions.filter(ticket_has_decision(tier=Tier.ESCALATION))
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
    return decisions.select_related("pool", "prompt_version", "ticket__pool", "intent").order_by(
        "-created_at", "-id"
    )


def report_ticket_list(*, filters: ReportFilter) -> QuerySet[Ticket]:
    """Tickets created in the period (pool filter), oldest first, with their routing cost and
    outcome's (latest deciding decision's) tier and confidence."""
    real = RoutingDecision.objects.real().filter(ticket=OuterRef("pk"))
    latest = real.deciding().order_by("-id")
    cost = real.order_by().values("ticket").annotate(total=Sum("cost_usd")).values("total")
    return (
        report_ticket_scope(filters=filters)
        .select_related("pool")
        .annotate(
            outcome_tier=Subquery(latest.values("tier")[:1]),
            outcome_confidence=Subquery(latest.values("confidence")[:1]),
            routing_cost_usd=Subquery(cost),
            decision_count=Subquery(
                real.order_by().values("ticket").annotate(n=Count("id")).values("n")
            ),
        )
        .order_by("created_at", "id")
    )


def percentile(ordered: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list: the smallest value with at least p% of the
    values at or below it; None for no values."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


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

"""Read-side of the alerts: the figures rules are judged on, over a rolling window, and the
alerts the dashboard shows. Figures count real tickets' routing (no dry runs)."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum

from apps.orchestrator.models import RoutingDecision
from apps.orchestrator.providers.base import PROVIDER_ERROR_KINDS
from apps.reports.models import Alert, AlertRule
from apps.reports.selectors import CONFIDENCE_TIERS, LATENCY_TIERS, LLM_TIERS, percentile
from apps.review.models import ReviewItem
from apps.review.selectors import review_queue_stats
from apps.tickets.models import Ticket

Metric = AlertRule.Metric


@dataclass(frozen=True)
class AlertFigure:
    """A rule's figure over its window and how many observations it rests on (None: none)."""

    value: float | None
    sample: int


def _decisions(since: datetime, until: datetime) -> QuerySet[RoutingDecision]:
    return RoutingDecision.objects.real().in_window(since=since, until=until).order_by()


def _share(count: int, total: int) -> AlertFigure:
    return AlertFigure(count / total if total else None, total)


def _latency_p95(since: datetime, until: datetime) -> AlertFigure:
    # A ticket's routing time is the sum of its tiers' latencies (one request id per run).
    totals = sorted(
        float(total or 0)
        for total in _decisions(since, until)
        .filter(tier__in=LATENCY_TIERS)
        .values("request_id")
        .annotate(total=Sum("latency_ms"))
        .values_list("total", flat=True)
    )
    return AlertFigure(percentile(totals, 95), len(totals))


def _low_confidence(since: datetime, until: datetime) -> AlertFigure:
    counts = (
        _decisions(since, until)
        .filter(tier__in=CONFIDENCE_TIERS, confidence__isnull=False)
        .aggregate(
            total=Count("id"),
            low=Count("id", filter=Q(confidence__lt=settings.ROUTER_ACCEPT_THRESHOLD)),
        )
    )
    return _share(counts["low"], counts["total"])


def _escalations(since: datetime, until: datetime) -> AlertFigure:
    counts = _decisions(since, until).aggregate(
        runs=Count("request_id", distinct=True),
        escalated=Count(
            "request_id", distinct=True, filter=Q(tier=RoutingDecision.Tier.ESCALATION)
        ),
    )
    return _share(counts["escalated"], counts["runs"])


def _cost_per_request(since: datetime, until: datetime) -> AlertFigure:
    totals = _decisions(since, until).aggregate(
        cost=Sum("cost_usd"), runs=Count("request_id", distinct=True)
    )
    runs = totals["runs"]
    return AlertFigure(float(totals["cost"] or 0) / runs if runs else None, runs)


def _provider_errors(since: datetime, until: datetime) -> AlertFigure:
    failed = Q()
    for kind in PROVIDER_ERROR_KINDS:
        failed |= Q(error__startswith=f"{kind}:")
    counts = (
        _decisions(since, until)
        .filter(tier__in=LLM_TIERS)
        .exclude(model="")
        .aggregate(total=Count("id"), failed=Count("id", filter=Q(valid=False) & failed))
    )
    return _share(counts["failed"], counts["total"])


def _review_oldest(until: datetime) -> AlertFigure:
    stats = review_queue_stats(now=until).kinds.get(ReviewItem.Kind.REVIEW)
    if stats is None or stats.oldest_open_age is None:
        return AlertFigure(0.0, 0)
    return AlertFigure(stats.oldest_open_age.total_seconds() / 60, stats.open)


def _sla_breaches(since: datetime, until: datetime) -> AlertFigure:
    breaches = Ticket.objects.filter(sla_breached_at__gte=since, sla_breached_at__lt=until).count()
    return AlertFigure(float(breaches), breaches)


def alert_figure(*, metric: str, since: datetime, until: datetime) -> AlertFigure:
    """The value of `metric` over [since, until) and its sample size: the window is half-open,
    like the reports' periods, so a decision made at `until` counts in the next window."""
    if metric == Metric.LATENCY_P95_MS:
        return _latency_p95(since, until)
    if metric == Metric.LOW_CONFIDENCE_SHARE:
        return _low_confidence(since, until)
    if metric == Metric.ESCALATION_SHARE:
        return _escalations(since, until)
    if metric == Metric.COST_PER_REQUEST_USD:
        return _cost_per_request(since, until)
    if metric == Metric.PROVIDER_ERROR_RATE:
        return _provider_errors(since, until)
    if metric == Metric.REVIEW_OLDEST_MINUTES:
        return _review_oldest(until)
    if metric == Metric.SLA_BREACHES:
        return _sla_breaches(since, until)
    raise ValueError(f"unknown alert metric {metric!r}")


def alert_list_open() -> QuerySet[Alert]:
    """Alerts not yet resolved (open first, then acknowledged), newest first, for the dashboard."""
    return (
        Alert.objects.filter(status__in=[Alert.Status.OPEN, Alert.Status.ACKNOWLEDGED])
        .select_related("rule", "acknowledged_by")
        # "open" sorts after "acknowledged": descending puts open alerts first.
        .order_by("-status", "-opened_at", "-id")
    )

"""Read-side of the review queue: the Wilson interval, routing accuracy estimated from audit
verdicts, and what is waiting in the queue."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, F, Min, Q, QuerySet
from django.utils import timezone

from apps.core.stats import Z_95, wilson, wilson_interval
from apps.orchestrator.models import RoutingDecision
from apps.pools.models import Pool
from apps.review.models import ReviewItem

Tier = RoutingDecision.Tier
# z for a two-sided 95% interval: the 0.975 quantile of the standard normal.
# Tiers whose route is an automatic decision with a confidence: the population audits sample.
# Handoff (a person was asked for), clarify and review are not automatic routes.
AUTOMATIC_TIERS: tuple[str, ...] = (Tier.RULES, Tier.CACHE, Tier.LOCAL, Tier.LLM, Tier.ESCALATION)


def automatic_decision_list(
    *, since: datetime | None = None, until: datetime | None = None, pool: Pool | None = None
) -> QuerySet[RoutingDecision]:
    """Final, confident automatic routes of real tickets (not dry runs), created in
    [since, until) (and routed to `pool` when given): the decisions audits sample from and
    accuracy is estimated for."""
    decisions = (
        RoutingDecision.objects.real()
        .deciding()
        .filter(
            action=RoutingDecision.Action.ROUTE,
            tier__in=AUTOMATIC_TIERS,
            confidence__isnull=False,
            pool__isnull=False,
        )
    )
    if since is not None:
        decisions = decisions.filter(created_at__gte=since)
    if until is not None:
        decisions = decisions.filter(created_at__lt=until)
    if pool is not None:
        decisions = decisions.filter(pool=pool)
    return decisions.order_by()


@dataclass(frozen=True, kw_only=True)
class AccuracyEstimate:
    """Correct routes among `n` resolved audits, with a 95% Wilson interval."""

    n: int
    correct: int
    accuracy: float | None  # None without any resolved audit
    low: float
    high: float

    @classmethod
    def of(cls, *, correct: int, n: int) -> "AccuracyEstimate":
        low, high = wilson_interval(correct, n)
        return cls(n=n, correct=correct, accuracy=correct / n if n else None, low=low, high=high)


@dataclass(frozen=True, kw_only=True)
class TierAccuracy(AccuracyEstimate):
    """One tier's estimate; `volume` is its automatic decisions in the period."""

    tier: str
    volume: int


@dataclass(frozen=True, kw_only=True)
class WeightedAccuracy:
    """Overall accuracy as the volume-weighted mean of the tiers' estimates.

    Covers the tiers with at least one resolved audit (`covered_volume` of `volume`
    decisions). The interval is Wilson's at Kish's effective sample size
    n_eff = 1 / sum(W_h^2 / n_h), which is the stratified estimator's variance when the
    tiers' accuracies are alike, and equals the pooled n when every tier is sampled alike.
    """

    accuracy: float | None
    low: float
    high: float
    effective_n: float
    volume: int
    covered_volume: int


@dataclass(frozen=True, kw_only=True)
class AccuracyReport:
    """Routing accuracy of automatic decisions in [since, until), from audit verdicts."""

    since: datetime | None
    until: datetime | None
    tiers: tuple[TierAccuracy, ...]
    pooled: AccuracyEstimate
    weighted: WeightedAccuracy


def routing_accuracy(
    *, since: datetime | None = None, until: datetime | None = None, pool: Pool | None = None
) -> AccuracyReport:
    """Accuracy of automatic routing per tier and overall, from resolved audit items only.

    Audits are a random sample of automatic decisions taken at the same share in every tier,
    so they are the one unbiased label source: review items cover only what the router doubted,
    and reroutes only what an agent happened to notice. A route is correct when the reviewer's
    pool is the decision's pool; "no pool" is wrong for a decision that routed. The period
    applies to the audited decision's time. With `pool`, only routes to that pool count: the
    share of the router's sends to it that belonged there (a precision, audited without bias,
    since audits sample every route at the same share).

    `pooled` counts all audits together: unbiased because every tier is sampled at the same
    share (each audit stands for the same number of decisions). Should shares ever differ per
    tier, the pooled figure over-represents the tiers sampled more; `weighted` weights each
    tier's accuracy by its automatic-decision volume in the period instead, which stays
    unbiased either way. The two agree (up to sampling noise) while shares are equal.
    """
    decisions = automatic_decision_list(since=since, until=until, pool=pool)
    volumes: dict[str, int] = {
        row["tier"]: row["n"] for row in decisions.values("tier").annotate(n=Count("id"))
    }
    audited = (
        ReviewItem.objects.filter(
            kind=ReviewItem.Kind.AUDIT,
            status=ReviewItem.Status.RESOLVED,
            decision__in=decisions.values("id"),
        )
        .order_by()
        .values("decision__tier")
        .annotate(
            n=Count("id"),
            correct=Count(
                "id",
                filter=Q(verdict_pool=F("decision__pool")) & ~Q(verdict=ReviewItem.Verdict.NO_POOL),
            ),
        )
    )
    counts = {row["decision__tier"]: (row["correct"], row["n"]) for row in audited}
    rows: list[TierAccuracy] = []
    for tier in AUTOMATIC_TIERS:
        volume = volumes.get(tier, 0)
        correct, n = counts.get(tier, (0, 0))
        if volume or n:
            low, high = wilson_interval(correct, n)
            accuracy = correct / n if n else None
            rows.append(
                TierAccuracy(
                    tier=tier,
                    volume=volume,
                    n=n,
                    correct=correct,
                    accuracy=accuracy,
                    low=low,
                    high=high,
                )
            )
    tiers = tuple(rows)
    pooled = AccuracyEstimate.of(
        correct=sum(row.correct for row in tiers), n=sum(row.n for row in tiers)
    )
    return AccuracyReport(
        since=since, until=until, tiers=tiers, pooled=pooled, weighted=_weighted(tiers)
    )


def _weighted(tiers: tuple[TierAccuracy, ...]) -> WeightedAccuracy:
    volume = sum(row.volume for row in tiers)
    covered = [row for row in tiers if row.n and row.volume]
    covered_volume = sum(row.volume for row in covered)
    if not covered_volume:
        return WeightedAccuracy(
            accuracy=None, low=0.0, high=1.0, effective_n=0.0, volume=volume, covered_volume=0
        )
    weights = [(row.volume / covered_volume, row) for row in covered]
    accuracy = sum(w * row.correct / row.n for w, row in weights)
    effective_n = 1 / sum(w * w / row.n for w, row in weights)
    low, high = wilson(accuracy, effective_n, Z_95)
    return WeightedAccuracy(
        accuracy=accuracy,
        low=low,
        high=high,
        effective_n=effective_n,
        volume=volume,
        covered_volume=covered_volume,
    )


@dataclass(frozen=True, kw_only=True)
class QueueKindStats:
    """Open items of one kind: how many, why, and how long the oldest has waited."""

    kind: str
    open: int
    by_reason: dict[str, int]
    oldest_open_age: timedelta | None


@dataclass(frozen=True, kw_only=True)
class ReviewQueueStats:
    """What waits in the review queue, per kind (review, audit) and overall."""

    open: int
    kinds: dict[str, QueueKindStats]
    oldest_open_age: timedelta | None


def review_queue_stats(*, now: datetime | None = None) -> ReviewQueueStats:
    """Open review and audit items by kind and reason, and the age of the oldest open one."""
    now = now or timezone.now()
    rows = (
        ReviewItem.objects.filter(status=ReviewItem.Status.OPEN)
        .order_by()
        .values("kind", "reason")
        .annotate(n=Count("id"), oldest=Min("created_at"))
    )
    by_reason: dict[str, dict[str, int]] = {kind: {} for kind in ReviewItem.Kind.values}
    oldest: dict[str, datetime] = {}
    for row in rows:
        kind = row["kind"]
        by_reason.setdefault(kind, {})[row["reason"]] = row["n"]
        if kind not in oldest or row["oldest"] < oldest[kind]:
            oldest[kind] = row["oldest"]
    kinds = {
        kind: QueueKindStats(
            kind=kind,
            open=sum(reasons.values()),
            by_reason=reasons,
            oldest_open_age=now - oldest[kind] if kind in oldest else None,
        )
        for kind, reasons in by_reason.items()
    }
    first = min(oldest.values(), default=None)
    return ReviewQueueStats(
        open=sum(stats.open for stats in kinds.values()),
        kinds=kinds,
        oldest_open_age=now - first if first is not None else None,
    )

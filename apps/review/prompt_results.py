"""The per-arm results of a prompt A/B test: accuracy from the audits people resolved (the
review queue's), escalation and review shares, cost and latency, a two-proportion z-test and the
sample size still needed. Prompt governance itself is the orchestrator's
(apps/orchestrator/prompts/); its results are read here because they rest on audits."""

import math
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, F, Q

from apps.core.stats import wilson_interval
from apps.orchestrator.models import (
    PromptExperiment,
    PromptVersion,
    RoutingDecision,
    RoutingDecisionQuerySet,
)
from apps.orchestrator.prompts.stats import (
    ZTest,
    percentile,
    two_proportion_sample_size,
    two_proportion_z_test,
)
from apps.review.models import ReviewItem

Tier = RoutingDecision.Tier
# The tiers that ask a model with the prompt. Cache hits carry the prompt version too but cost
# nothing and take microseconds: counting them would blur the cost and latency of the prompt.
PROMPT_TIERS = (Tier.LLM, Tier.ESCALATION)
# Below this many audited decisions per arm the accuracy test has too little to go on; the
# test falls back to the escalation share, which every routing with the prompt measures.
MIN_LABELS_FOR_ACCURACY = 30
ALPHA = 0.05
POWER = 0.8


@dataclass(frozen=True, kw_only=True)
class ArmResult:
    """One arm of an A/B test: the tickets whose routing asked a model with this version.

    `routings`: routing runs (one request id each) that called the router or escalation model
    with the version. `escalated`: those where the larger model was asked (the router was
    unsure or failed). `reviewed`: those that ended in the review queue. Accuracy: resolved
    audit samples of the version's final LLM routes (correct when the reviewer's pool is the
    decision's). Cost and latency are per routing run (all its model calls together).
    """

    arm: str  # "control" | "variant"
    version: PromptVersion
    routings: int
    escalated: int
    reviewed: int
    audited: int
    correct: int
    cost_usd: Decimal
    latency_p50_ms: float | None
    latency_p95_ms: float | None

    @property
    def escalation_share(self) -> float | None:
        return self.escalated / self.routings if self.routings else None

    @property
    def review_share(self) -> float | None:
        return self.reviewed / self.routings if self.routings else None

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.audited if self.audited else None

    @property
    def accuracy_interval(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.audited)

    @property
    def cost_per_routing_usd(self) -> Decimal | None:
        return self.cost_usd / self.routings if self.routings else None


@dataclass(frozen=True, kw_only=True)
class ExperimentResult:
    """Both arms, the significance test and how many more observations it needs.

    `metric` is "accuracy" when both arms have at least MIN_LABELS_FOR_ACCURACY audits, else
    "escalation_share". `test` is None until both arms have an observation. `required_per_arm`
    is the sample per arm a two-sided test at ALPHA needs for POWER at the observed
    difference (None when there is none); `still_needed` is what the smaller arm lacks.
    """

    experiment: PromptExperiment
    control: ArmResult
    variant: ArmResult
    metric: str
    test: ZTest | None
    required_per_arm: int | None
    still_needed: int | None

    @property
    def significant(self) -> bool:
        return self.test is not None and self.test.significant(ALPHA)


def _arm_decisions(experiment: PromptExperiment, version: PromptVersion) -> RoutingDecisionQuerySet:
    decisions = RoutingDecision.objects.real().filter(prompt_version=version, tier__in=PROMPT_TIERS)
    if experiment.ended_at is None:
        decisions = decisions.filter(created_at__gte=experiment.started_at)
    else:
        # Half-open, like every window: a decision at the very moment the test ended is not
        # the test's.
        decisions = decisions.in_window(since=experiment.started_at, until=experiment.ended_at)
    return decisions.order_by()


def _arm_result(experiment: PromptExperiment, version: PromptVersion, arm: str) -> ArmResult:
    decisions = _arm_decisions(experiment, version)
    cost: dict[object, Decimal] = defaultdict(Decimal)
    latency: dict[object, float] = defaultdict(float)
    escalated: set[object] = set()
    for request_id, tier, cost_usd, latency_ms in decisions.values_list(
        "request_id", "tier", "cost_usd", "latency_ms"
    ).iterator():
        cost[request_id] += cost_usd
        latency[request_id] += latency_ms
        if tier == Tier.ESCALATION:
            escalated.add(request_id)
    reviewed = (
        RoutingDecision.objects.deciding()
        .filter(request_id__in=decisions.values("request_id"), tier=Tier.REVIEW)
        .values("request_id")
        .distinct()
        .count()
    )
    audits = ReviewItem.objects.filter(
        kind=ReviewItem.Kind.AUDIT,
        status=ReviewItem.Status.RESOLVED,
        decision__in=decisions.deciding().filter(action=RoutingDecision.Action.ROUTE).values("id"),
    ).aggregate(
        n=Count("id"),
        correct=Count(
            "id",
            filter=Q(verdict_pool=F("decision__pool")) & ~Q(verdict=ReviewItem.Verdict.NO_POOL),
        ),
    )
    latencies = list(latency.values())
    return ArmResult(
        arm=arm,
        version=version,
        routings=len(cost),
        escalated=len(escalated),
        reviewed=reviewed,
        audited=audits["n"],
        correct=audits["correct"],
        cost_usd=sum(cost.values(), Decimal(0)),
        latency_p50_ms=percentile(latencies, 0.5),
        latency_p95_ms=percentile(latencies, 0.95),
    )


def prompt_experiment_result(*, experiment: PromptExperiment) -> ExperimentResult:
    """Per-arm accuracy, escalation and review shares, cost and latency of an A/B test, with
    a two-proportion z-test (variant minus control) and the sample size still needed."""
    control = _arm_result(experiment, experiment.control, "control")
    variant = _arm_result(experiment, experiment.variant, "variant")
    if min(control.audited, variant.audited) >= MIN_LABELS_FOR_ACCURACY:
        metric = "accuracy"
        counts = (control.correct, control.audited, variant.correct, variant.audited)
    else:
        metric = "escalation_share"
        counts = (control.escalated, control.routings, variant.escalated, variant.routings)
    s1, n1, s2, n2 = counts
    test = required = still_needed = None
    if n1 and n2:
        test = two_proportion_z_test(successes1=s1, n1=n1, successes2=s2, n2=n2)
        n = two_proportion_sample_size(p1=test.p1, p2=test.p2, alpha=ALPHA, power=POWER)
        if n is not None:
            required = math.ceil(n)
            still_needed = max(0, required - min(n1, n2))
    return ExperimentResult(
        experiment=experiment,
        control=control,
        variant=variant,
        metric=metric,
        test=test,
        required_per_arm=required,
        still_needed=still_needed,
    )

"""The per-arm results of a prompt A/B test (apps/review/prompt_results.py), read from the
decisions recorded with each arm's prompt version and from audit verdicts: tickets are routed
(through the real SDK against the Messages API stand-in) with their arm's prompt, and people
resolve the audits routing opened."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

from apps.chat.services import conversation_create
from apps.flows.routing import ticket_route
from apps.orchestrator.models import PromptExperiment, PromptVersion, RoutingDecision
from apps.orchestrator.prompts.services import prompt_experiment_start, prompt_version_append
from apps.orchestrator.prompts.stats import two_proportion_sample_size, two_proportion_z_test
from apps.review.models import ReviewItem
from apps.review.prompt_admin import results_table
from apps.review.prompt_results import MIN_LABELS_FOR_ACCURACY, prompt_experiment_result
from apps.review.services import review_item_resolve
from apps.tickets.models import Ticket
from tests.orchestrator.conftest import route_reply
from tests.orchestrator.prompts.test_ab_tests import MARKER, is_variant, open_ticket, system_text

pytestmark = pytest.mark.django_db

Tier = RoutingDecision.Tier
STARTED = datetime(2026, 3, 2, 9, tzinfo=UTC)
ENDED = STARTED + timedelta(days=7)


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


def ab_test_start() -> PromptExperiment:
    """An A/B test of the active router prompt against a variant that carries MARKER."""
    control = PromptVersion.objects.get(purpose="router", active=True)
    variant = prompt_version_append(
        text=control.text + "\n" + MARKER, few_shot=control.few_shot, parent=control, author=None
    )
    return prompt_experiment_start(variant=variant, split=0.5, actor=None)


@pytest.fixture
def experiment(pools) -> PromptExperiment:
    return ab_test_start()


def ended_experiment() -> PromptExperiment:
    """An A/B test that ran from STARTED until ENDED, its control the winner."""
    experiment = ab_test_start()
    PromptExperiment.objects.filter(pk=experiment.pk).update(
        started_at=STARTED, status="ended", winner=experiment.control, ended_at=ENDED
    )
    experiment.refresh_from_db()
    return experiment


def routed_with(version: PromptVersion, at: datetime) -> RoutingDecision:
    """One routing run of a fresh ticket whose router call used `version`, recorded at `at`."""
    ticket = Ticket.objects.create(conversation=conversation_create().conversation)
    decision = RoutingDecision.objects.create(
        ticket=ticket,
        tier=Tier.LLM,
        action=RoutingDecision.Action.ROUTE,
        prompt_version=version,
        confidence=0.9,
        ends_run=True,
    )
    RoutingDecision.objects.filter(pk=decision.pk).update(created_at=at)
    return decision


def unsure_variant(body: dict):
    """The variant's router is unsure (0.6: the escalation model re-evaluates); everything else
    answers confidently. The control routes to billing, the variant to technical (refund would
    ask the customer for an order number first)."""
    variant = MARKER in system_text(body)
    if variant and body["model"] == "claude-haiku-4-5":
        return route_reply("technical", 0.6)
    return route_reply("technical" if variant else "billing", 0.93)


def run_arms(experiment: PromptExperiment, per_arm: int, settings) -> dict[str, list[Ticket]]:
    settings.REVIEW_AUDIT_SHARE = 1.0  # every confident automatic route gets an audit item
    tickets: dict[str, list[Ticket]] = {"control": [], "variant": []}
    number = 0
    while min(len(group) for group in tickets.values()) < per_arm:
        number += 1
        ticket = open_ticket(f"Ticket {number}: I was charged twice this month")
        arm = "variant" if is_variant(experiment, ticket) else "control"
        if len(tickets[arm]) < per_arm:
            ticket_route(ticket=ticket)
            tickets[arm].append(ticket)
    return tickets


def resolve_audits(tickets: list[Ticket], reviewer, pools, truth: str) -> None:
    for item in ReviewItem.objects.filter(kind=ReviewItem.Kind.AUDIT, ticket__in=tickets):
        review_item_resolve(item=item, reviewer=reviewer, verdict="routed", pool=pools[truth])


@pytest.fixture
def reviewer(db):
    return get_user_model().objects.create_superuser("reviewer-1", password="pw")


def test_results_per_arm_with_the_escalation_share_test_while_audits_are_few(
    pools, llm, experiment, settings, reviewer
):
    llm.default = unsure_variant
    tickets = run_arms(experiment, 6, settings)
    resolve_audits(tickets["control"][:4], reviewer, pools, "billing")  # 4 right
    resolve_audits(tickets["variant"][:4], reviewer, pools, "billing")  # 4 wrong (technical)

    result = prompt_experiment_result(experiment=experiment)

    control, variant = result.control, result.variant
    assert (control.version, variant.version) == (experiment.control, experiment.variant)
    assert (control.routings, control.escalated, control.reviewed) == (6, 0, 0)
    assert (variant.routings, variant.escalated, variant.reviewed) == (6, 6, 0)
    assert (control.audited, control.correct, control.accuracy) == (4, 4, 1.0)
    assert (variant.audited, variant.correct, variant.accuracy) == (4, 0, 0.0)
    # The variant's routings also pay the larger model.
    assert control.cost_per_routing_usd is not None
    assert variant.cost_per_routing_usd is not None
    assert variant.cost_per_routing_usd > control.cost_per_routing_usd > 0
    assert control.latency_p50_ms is not None
    assert variant.latency_p95_ms is not None
    assert result.metric == "escalation_share"  # fewer than MIN_LABELS_FOR_ACCURACY audits
    expected = two_proportion_z_test(successes1=0, n1=6, successes2=6, n2=6)
    assert result.test is not None
    assert (result.test.z, result.test.p_value) == pytest.approx((expected.z, expected.p_value))
    assert result.significant
    assert result.required_per_arm is not None
    assert result.still_needed == max(0, result.required_per_arm - 6)
    table = results_table(result)  # what the experiment's admin page shows
    assert f"z = {expected.z:.3f}, p = {expected.p_value:.4f}" in table
    assert "escalation share (variant minus control +100.0%)" in table
    assert "significant at 5%" in table


def test_with_enough_audits_the_test_is_on_accuracy_with_the_sample_still_needed(
    pools, llm, experiment, settings, reviewer
):
    llm.default = unsure_variant
    n = MIN_LABELS_FOR_ACCURACY
    tickets = run_arms(experiment, n, settings)
    resolve_audits(tickets["control"], reviewer, pools, "billing")  # all right
    # The variant sent every ticket to technical: right on 25 of them, wrong on the rest.
    resolve_audits(tickets["variant"][:25], reviewer, pools, "technical")
    resolve_audits(tickets["variant"][25:], reviewer, pools, "billing")

    result = prompt_experiment_result(experiment=experiment)

    assert result.metric == "accuracy"
    assert (result.control.correct, result.control.audited) == (n, n)
    assert (result.variant.correct, result.variant.audited) == (25, n)
    expected = two_proportion_z_test(successes1=n, n1=n, successes2=25, n2=n)
    assert result.test is not None
    assert result.test.p_value == pytest.approx(expected.p_value)
    needed = two_proportion_sample_size(p1=1.0, p2=25 / n)
    assert needed is not None
    assert result.required_per_arm == -(-needed // 1)  # rounded up
    assert result.still_needed == max(0, result.required_per_arm - n)


def test_a_decision_at_the_moment_the_test_ended_is_not_counted():
    experiment = ended_experiment()
    for version in (experiment.control, experiment.variant):
        routed_with(version, STARTED - timedelta(microseconds=1))  # before the test
        routed_with(version, STARTED)  # its first moment
        routed_with(version, ENDED - timedelta(microseconds=1))  # its last moment
        routed_with(version, ENDED)  # the moment it ended: after it, like every window's end

    result = prompt_experiment_result(experiment=experiment)

    assert (result.control.routings, result.variant.routings) == (2, 2)

"""A/B tests of prompt versions on real tickets: each ticket is routed (through the real SDK
against the Messages API stand-in) with its arm's prompt, the version is recorded on its
decisions, and the per-arm results and significance test come from those decisions and from
audit verdicts."""

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

from apps.chat.models import Message
from apps.chat.services import conversation_create
from apps.flows.messages import message_post
from apps.flows.routing import ticket_route
from apps.orchestrator.models import PromptExperiment, PromptVersion, RoutingDecision
from apps.orchestrator.prompts.selectors import prompt_for_ticket
from apps.orchestrator.prompts.services import prompt_experiment_start, prompt_version_append
from apps.orchestrator.prompts.stats import (
    arm_is_variant,
    two_proportion_sample_size,
    two_proportion_z_test,
)
from apps.orchestrator.services import text_route_dry_run
from apps.review.models import ReviewItem
from apps.review.prompt_admin import results_table
from apps.review.prompt_results import MIN_LABELS_FOR_ACCURACY, prompt_experiment_result
from apps.review.services import review_item_resolve
from apps.tickets.models import Ticket
from tests.orchestrator.conftest import route_reply

pytestmark = pytest.mark.django_db

MARKER = "Variant B: prefer the billing team when money is mentioned."
Tier = RoutingDecision.Tier


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


@pytest.fixture
def experiment(pools) -> PromptExperiment:
    control = PromptVersion.objects.get(purpose="router", active=True)
    variant = prompt_version_append(
        text=control.text + "\n" + MARKER,
        few_shot=control.few_shot,
        parent=control,
        author=None,
    )
    return prompt_experiment_start(variant=variant, split=0.5, actor=None)


def open_ticket(text: str) -> Ticket:
    conversation = conversation_create().conversation
    message_post(conversation=conversation, text=text, sender=Message.Sender.CUSTOMER)
    return Ticket.objects.get(conversation=conversation)


def is_variant(experiment: PromptExperiment, ticket: Ticket) -> bool:
    return arm_is_variant(experiment_id=experiment.pk, ticket_id=ticket.pk, split=experiment.split)


def system_text(body: dict) -> str:
    return "".join(block["text"] for block in body["system"])


def test_each_ab_ticket_is_routed_with_its_arms_prompt_and_the_version_is_recorded(
    pools, llm, experiment
):
    llm.default = lambda body: route_reply("billing", 0.93)
    arms = {"control": 0, "variant": 0}
    while min(arms.values()) < 3:
        ticket = open_ticket(f"Question {sum(arms.values())} about a charge on my card")
        expected = experiment.variant if is_variant(experiment, ticket) else experiment.control
        sent_before = len(llm.message_requests)

        final = ticket_route(ticket=ticket)

        assert final is not None
        assert final.tier == Tier.LLM
        assert final.prompt_version == expected
        sent = llm.message_requests[sent_before:]
        assert len(sent) == 1
        assert (MARKER in system_text(sent[0].json)) == (expected == experiment.variant)
        # The same ticket keeps its arm whenever its prompt is looked up again.
        assert prompt_for_ticket(ticket_id=ticket.pk) == expected
        arms["variant" if expected == experiment.variant else "control"] += 1


def test_a_dry_run_without_a_ticket_uses_the_control(pools, llm, experiment):
    llm.default = lambda body: route_reply("technical", 0.9)
    run = text_route_dry_run(text="The app crashes when I upload a photo")
    assert run.decisions[-1].prompt_version == experiment.control
    assert MARKER not in system_text(llm.message_requests[-1].json)


def test_without_a_running_test_the_active_version_routes_every_ticket(pools, llm, experiment):
    experiment.status, experiment.winner = "ended", experiment.control
    experiment.ended_at = experiment.started_at
    experiment.save()
    assert {prompt_for_ticket(ticket_id=ticket_id) for ticket_id in range(1, 50)} == {
        experiment.control
    }


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

"""A/B tests of prompt versions on real tickets: each ticket is routed (through the real SDK
against the Messages API stand-in) with its arm's prompt and the version is recorded on its
decisions. The per-arm results, which rest on audits, are tested in
tests/review/test_prompt_results.py."""

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.chat.models import Message
from apps.chat.services import conversation_create
from apps.flows.messages import message_post
from apps.flows.routing import ticket_route
from apps.orchestrator.models import PromptExperiment, PromptVersion, RoutingDecision
from apps.orchestrator.prompts.selectors import prompt_for_ticket
from apps.orchestrator.prompts.services import (
    prompt_experiment_start,
    prompt_version_activate,
    prompt_version_append,
)
from apps.orchestrator.prompts.stats import arm_is_variant
from apps.orchestrator.services import text_route_dry_run
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


def test_a_version_is_read_once_a_process_and_a_new_activation_is_seen_at_once(pools):
    first = PromptVersion.objects.get(purpose="router", active=True)
    with CaptureQueriesContext(connection) as queries:
        assert prompt_for_ticket(ticket_id=1) == first
        assert prompt_for_ticket(ticket_id=2) == first
    # The template and its examples are read once; each call asks only which version routes.
    reads = [q["sql"] for q in queries if '"orchestrator_promptversion"."text"' in q["sql"]]
    assert len(reads) == 1

    second = prompt_version_append(
        text=first.text + "\nSecond.", few_shot=first.few_shot, parent=first, author=None
    )
    prompt_version_activate(version=second, actor=None)
    chosen = prompt_for_ticket(ticket_id=3)
    assert chosen == second
    assert chosen is not None
    assert chosen.text.endswith("Second.")

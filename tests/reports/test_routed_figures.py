"""Figures from tickets routed for real: the pipeline, the real anthropic SDK and the Messages API
stand-in write the decision rows; the summary reports what they cost and how they went."""

from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from apps.chat.models import Message
from apps.chat.services import conversation_create
from apps.flows.messages import message_post
from apps.flows.routing import ticket_route
from apps.orchestrator.models import RoutingRule
from apps.tickets.models import Ticket
from tests.orchestrator.conftest import route_reply

MTOK = Decimal(1_000_000)
# The stand-in's default usage: 350 input and 40 output tokens per call.
HAIKU_CALL = (350 * Decimal(1) + 40 * Decimal(5)) / MTOK
SONNET_CALL = (350 * Decimal(3) + 40 * Decimal(15)) / MTOK


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


def route(text: str) -> Ticket:
    conversation = conversation_create().conversation
    message_post(conversation=conversation, text=text, sender=Message.Sender.CUSTOMER)
    ticket = Ticket.objects.get(conversation=conversation)
    ticket_route(ticket=ticket)
    ticket.refresh_from_db()
    return ticket


def test_summary_of_really_routed_tickets_counts_llm_calls_escalations_review_and_cost(
    manager_api, pools, llm
):
    RoutingRule.objects.create(name="password", pattern="password", pool=pools["technical"])
    llm.enqueue(
        route_reply("billing", 0.93),  # the router decides
        route_reply("technical", 0.6),  # unsure: the larger model decides
        route_reply("technical", 0.9),
        route_reply("billing", 0.3),  # too unsure: review
    )
    routed = [
        route("Why is there a second charge on my card this month?"),
        route("The export button does nothing when I click it"),
        route("Something about my thing, not sure"),
        route("I forgot my password again"),
    ]
    assert [t.status for t in routed] == ["queued", "queued", "in_review", "queued"]
    today = timezone.localdate().isoformat()
    body = manager_api.get("/api/v1/reports/summary/", {"from": today, "to": today}).json()

    routing = body["routing"]
    assert routing["tickets"] == 4
    assert (routing["llm_call"]["count"], routing["llm_call"]["share"]) == (3, 0.75)
    assert routing["escalated_to_model"]["count"] == 1
    assert routing["escalated_to_review"]["count"] == 1
    assert routing["rule_hit"]["count"] == 1
    cost = body["cost"]
    assert cost["total_usd"] == pytest.approx(float(3 * HAIKU_CALL + SONNET_CALL))
    assert cost["per_ticket_usd"] == pytest.approx(float(3 * HAIKU_CALL + SONNET_CALL) / 4)
    by_model = {(row["tier"], row["model"]): row for row in cost["by_tier_model"]}
    assert by_model[("llm", "claude-haiku-4-5")]["decisions"] == 3
    assert by_model[("llm", "claude-haiku-4-5")]["input_tokens"] == 3 * 350
    assert by_model[("escalation", "claude-sonnet-4-6")]["cost_usd"] == pytest.approx(
        float(SONNET_CALL)
    )
    assert cost["tokens"]["output_tokens"] == 4 * 40
    latency = {row["tier"]: row for row in body["latency"]}
    assert latency["llm"]["n"] == 3
    assert latency["llm"]["p50_ms"] > 0

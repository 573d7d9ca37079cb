"""A customer asking for a person: the ticket skips the LLM tiers and any question, and goes to a
pool queue (or to review when no cheap tier finds one)."""

import pytest
from django.core.cache import cache

from apps.chat.models import Conversation, ConversationEvent, Message
from apps.chat.services import conversation_create
from apps.flows.messages import message_post
from apps.flows.routing import ticket_human_request, ticket_route
from apps.orchestrator.models import RoutingDecision
from apps.pools.services import ticket_queue
from apps.tickets.models import Ticket, TicketActivity
from tests.orchestrator.conftest import route_reply

pytestmark = pytest.mark.django_db

Tier = RoutingDecision.Tier
Status = Ticket.Status
CUSTOMER = Message.Sender.CUSTOMER
BOT = Message.Sender.BOT
PASSWORD_TEXT = "I forgot my password and the reset email never arrives"


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


def bot_texts(conversation: Conversation) -> list[str]:
    return list(
        Message.objects.filter(conversation=conversation, sender=BOT)
        .order_by("id")
        .values_list("text", flat=True)
    )


def final_decisions(ticket: Ticket) -> list[RoutingDecision]:
    return list(ticket.decisions.filter(ends_run=True).order_by("id"))


def test_asking_before_any_message_is_remembered_and_acknowledged(pools, llm):
    conversation = conversation_create().conversation
    assert ticket_human_request(conversation=conversation) is None
    conversation.refresh_from_db()
    assert conversation.wants_human
    assert not Ticket.objects.filter(conversation=conversation).exists()
    texts = bot_texts(conversation)
    assert len(texts) == 1
    assert "person" in texts[0]
    assert llm.requests == []


def test_asking_twice_before_any_message_acknowledges_once(pools, llm):
    conversation = conversation_create().conversation
    ticket_human_request(conversation=conversation)
    events = ConversationEvent.objects.filter(conversation=conversation).count()
    assert ticket_human_request(conversation=conversation) is None
    assert len(bot_texts(conversation)) == 1
    assert ConversationEvent.objects.filter(conversation=conversation).count() == events


def test_the_next_message_goes_to_the_local_models_pool_without_an_llm_call(
    pools, llm, local_model, django_capture_on_commit_callbacks
):
    conversation = conversation_create().conversation
    ticket_human_request(conversation=conversation)
    with django_capture_on_commit_callbacks(execute=True):  # routing runs after commit
        message_post(conversation=conversation, text=PASSWORD_TEXT, sender=CUSTOMER)
    ticket = Ticket.objects.get(conversation=conversation)
    assert ticket.human_requested
    assert (ticket.status, ticket.pool) == (Status.QUEUED, pools["technical"])
    assert llm.requests == []
    finals = final_decisions(ticket)
    assert [(d.tier, d.action, d.pool) for d in finals] == [
        (Tier.HANDOFF, "route", pools["technical"])
    ]
    assert ticket.decisions.filter(tier=Tier.LOCAL, pool=pools["technical"]).exists()
    assert bot_texts(conversation)[-1] == "A person from our Technical team will reply here."
    assert ticket.activities.filter(kind=TicketActivity.Kind.HUMAN_REQUESTED).count() == 1
    conversation.refresh_from_db()
    assert not conversation.wants_human  # the next ticket is routed normally again


def test_without_a_fitting_pool_the_handoff_goes_to_review(
    pools, llm, django_capture_on_commit_callbacks
):
    conversation = conversation_create().conversation
    ticket_human_request(conversation=conversation)
    with django_capture_on_commit_callbacks(execute=True):
        message_post(
            conversation=conversation, text="Hmm, a question about something", sender=CUSTOMER
        )
    ticket = Ticket.objects.get(conversation=conversation)
    assert ticket.human_requested
    assert (ticket.status, ticket.pool) == (Status.IN_REVIEW, None)
    assert llm.requests == []
    finals = final_decisions(ticket)
    assert [(d.tier, d.action, d.pool) for d in finals] == [(Tier.HANDOFF, "review", None)]
    assert bot_texts(conversation)[-1] == (
        "A person will look at your request shortly and reply here."
    )


def test_a_pool_that_needs_a_fact_gets_the_ticket_without_a_question(
    pools, llm, local_model, django_capture_on_commit_callbacks
):
    conversation = conversation_create().conversation
    ticket_human_request(conversation=conversation)
    with django_capture_on_commit_callbacks(execute=True):
        message_post(
            conversation=conversation,
            text="I want a refund for my order, please give me my money back",
            sender=CUSTOMER,
        )
    ticket = Ticket.objects.get(conversation=conversation)
    assert llm.requests == []
    assert not ticket.decisions.filter(tier=Tier.CLARIFY).exists()
    assert (ticket.status, ticket.pool) == (Status.QUEUED, pools["refund"])
    assert ticket.missing_fields == []
    assert bot_texts(conversation)[-1] == "A person from our Refunds team will reply here."
    assert final_decisions(ticket)[-1].tier == Tier.HANDOFF


def open_routing_ticket(text: str, django_capture_on_commit_callbacks) -> tuple[Ticket, list]:
    """A customer's first message; the routing task is held back (returned, not yet run)."""
    conversation = conversation_create().conversation
    with django_capture_on_commit_callbacks() as held:
        message_post(conversation=conversation, text=text, sender=CUSTOMER)
    return Ticket.objects.get(conversation=conversation), held


def test_asking_while_the_ticket_is_routed_queues_it_at_once(
    pools, llm, local_model, django_capture_on_commit_callbacks
):
    ticket, held = open_routing_ticket(PASSWORD_TEXT, django_capture_on_commit_callbacks)
    assert ticket.status == Status.ROUTING
    returned = ticket_human_request(conversation=ticket.conversation)
    assert returned is not None
    assert returned.pk == ticket.pk
    assert (returned.status, returned.pool, returned.human_requested) == (
        Status.QUEUED,
        pools["technical"],
        True,
    )
    assert llm.requests == []
    decisions = ticket.decisions.count()
    for callback in held:  # the routing task queued by the message arrives late: a no-op
        callback()
    returned.refresh_from_db()
    assert (returned.status, ticket.decisions.count()) == (Status.QUEUED, decisions)
    assert llm.requests == []


def test_asking_while_routed_without_a_fitting_pool_sends_it_to_review(
    pools, llm, django_capture_on_commit_callbacks
):
    ticket, _held = open_routing_ticket(
        "Something odd happened", django_capture_on_commit_callbacks
    )
    returned = ticket_human_request(conversation=ticket.conversation)
    assert returned is not None
    assert (returned.status, returned.pool) == (Status.IN_REVIEW, None)
    assert final_decisions(returned)[-1].tier == Tier.HANDOFF
    assert llm.requests == []


def test_asking_while_awaiting_a_fact_queues_in_that_pool_without_asking_again(pools, llm):
    llm.default = lambda body: route_reply("refund", 0.9, missing=["order_number"])
    conversation = conversation_create().conversation
    message_post(
        conversation=conversation, text="I want my money back for the lamp", sender=CUSTOMER
    )
    ticket = Ticket.objects.get(conversation=conversation)
    ticket_route(ticket=ticket)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.pool) == (Status.AWAITING_CUSTOMER, pools["refund"])
    calls = len(llm.requests)
    questions = bot_texts(conversation)
    returned = ticket_human_request(conversation=conversation)
    assert returned is not None
    assert (returned.status, returned.pool) == (Status.QUEUED, pools["refund"])
    assert returned.missing_fields == []
    assert len(llm.requests) == calls
    assert bot_texts(conversation) == [
        *questions,
        "A person from our Refunds team will reply here.",
    ]
    assert final_decisions(returned)[-1].tier == Tier.HANDOFF
    assert final_decisions(returned)[-1].pool == pools["refund"]
    # The handoff's decision keeps the (redacted) text, the truth a later correction labels.
    assert final_decisions(returned)[-1].redacted == "I want my money back for the lamp"


def test_a_handoff_from_awaiting_a_fact_keeps_the_injection_flag(pools, llm):
    llm.default = lambda body: route_reply("refund", 0.9, missing=["order_number"])
    conversation = conversation_create().conversation
    message_post(conversation=conversation, text="Refund the lamp", sender=CUSTOMER)
    ticket = Ticket.objects.get(conversation=conversation)
    ticket_route(ticket=ticket)
    Ticket.objects.filter(pk=ticket.pk).update(injection_suspected=True)
    returned = ticket_human_request(conversation=conversation)
    assert returned is not None
    assert returned.status == Status.QUEUED
    assert returned.injection_suspected


def test_asking_when_already_queued_only_acknowledges_once(pools, llm):
    conversation = conversation_create().conversation
    message_post(conversation=conversation, text="Where is my invoice?", sender=CUSTOMER)
    ticket = ticket_queue(
        ticket=Ticket.objects.get(conversation=conversation), pool=pools["billing"]
    )
    decisions = ticket.decisions.count()
    returned = ticket_human_request(conversation=conversation)
    assert returned is not None
    assert (returned.status, returned.pool, returned.human_requested) == (
        Status.QUEUED,
        pools["billing"],
        True,
    )
    assert bot_texts(conversation) == ["A person from our Billing team will reply here."]
    assert ticket.activities.filter(kind=TicketActivity.Kind.HUMAN_REQUESTED).count() == 1
    events = ConversationEvent.objects.filter(conversation=conversation).count()
    activities = ticket.activities.count()
    ticket_human_request(conversation=conversation)
    assert ConversationEvent.objects.filter(conversation=conversation).count() == events
    assert ticket.activities.count() == activities
    assert len(bot_texts(conversation)) == 1
    assert ticket.decisions.count() == decisions  # not routed again
    assert llm.requests == []


def test_asking_while_in_review_acknowledges_without_naming_a_pool(pools, llm):
    conversation = conversation_create().conversation
    message_post(conversation=conversation, text="Something odd", sender=CUSTOMER)
    llm.default = lambda body: route_reply(None, 0.95, action="escalate")  # no pool fits
    ticket_route(ticket=Ticket.objects.get(conversation=conversation))
    llm_calls = len(llm.requests)
    returned = ticket_human_request(conversation=conversation)
    assert returned is not None
    assert returned.status == Status.IN_REVIEW
    assert bot_texts(conversation)[-1] == (
        "A person will look at your request shortly and reply here."
    )
    assert len(llm.requests) == llm_calls


@pytest.mark.parametrize(
    ("text", "status", "pool"),
    [
        ("I want to talk to a person", Status.IN_REVIEW, None),
        ("real agent please", Status.IN_REVIEW, None),
        (
            "Can I speak with a human please? My password reset never arrives",
            Status.QUEUED,
            "technical",
        ),
        (
            "I need to speak to a real person about the double charge on my invoice",
            Status.QUEUED,
            "billing",
        ),
        ("talk to a human, the app keeps crashing on login", Status.QUEUED, "technical"),
    ],
)
def test_asking_for_a_person_in_the_first_message_takes_the_handoff_path(
    pools, llm, local_model, text, status, pool, django_capture_on_commit_callbacks
):
    conversation = conversation_create().conversation
    with django_capture_on_commit_callbacks(execute=True):
        message_post(conversation=conversation, text=text, sender=CUSTOMER)
    ticket = Ticket.objects.get(conversation=conversation)
    assert ticket.human_requested
    assert (ticket.status, ticket.pool) == (status, pools[pool] if pool else None)
    assert llm.requests == []
    assert final_decisions(ticket)[-1].tier == Tier.HANDOFF
    assert ticket.activities.filter(kind=TicketActivity.Kind.HUMAN_REQUESTED).count() == 1


def test_an_ordinary_first_message_is_not_a_handoff(pools, llm):
    llm.enqueue(route_reply("billing", 0.93))
    conversation = conversation_create().conversation
    message_post(conversation=conversation, text="Why was I charged twice?", sender=CUSTOMER)
    ticket = Ticket.objects.get(conversation=conversation)
    ticket_route(ticket=ticket)
    ticket.refresh_from_db()
    assert not ticket.human_requested
    assert final_decisions(ticket)[-1].tier == Tier.LLM


def test_a_handoff_routed_ticket_never_shows_a_confidence_to_the_customer(
    pools, llm, local_model, django_capture_on_commit_callbacks
):
    conversation = conversation_create().conversation
    ticket_human_request(conversation=conversation)
    with django_capture_on_commit_callbacks(execute=True):
        message_post(conversation=conversation, text=PASSWORD_TEXT, sender=CUSTOMER)
    ticket = Ticket.objects.get(conversation=conversation)
    assert ticket.decisions.filter(confidence__isnull=False).exists()  # staff can see it
    statuses = ConversationEvent.objects.filter(
        conversation=conversation, type=ConversationEvent.Type.STATUS
    )
    assert [event.payload["status"] for event in statuses] == ["routing", "queued"]
    for event in statuses:
        assert set(event.payload) <= {"status", "pool", "pool_name", "agent"}
    everything = str(list(ConversationEvent.objects.filter(conversation=conversation).values()))
    assert "confidence" not in everything

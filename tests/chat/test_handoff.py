""" "Talk to a person" from the customer's side: the `handoff` frame and its REST twin.

An API key and the Messages API stand-in are configured throughout, so a model call would be
seen: asking for a person must never reach one.
"""

import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework.test import APIClient

from apps.chat.models import Conversation, Message
from apps.chat.selectors import event_list_after
from apps.chat.services import conversation_create
from apps.flows.messages import message_post
from apps.orchestrator.models import RoutingRule
from apps.pools.services import ticket_queue
from apps.tickets.models import Ticket
from supportdesk.asgi import application
from tests.fakes.fixtures import messages_api  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db

CUSTOMER = Message.Sender.CUSTOMER
ORIGIN = (b"origin", b"http://127.0.0.1:8000")


@pytest.fixture
def llm(settings, messages_api):  # noqa: F811
    """A configured model behind the real SDK: any call would be recorded by the stand-in."""
    settings.ANTHROPIC_API_KEY = "test-key"
    settings.ANTHROPIC_BASE_URL = messages_api.url
    settings.ROUTER_TIMEOUT_SECONDS = 1.0
    settings.ROUTER_MAX_RETRIES = 0
    return messages_api


@pytest.fixture
def invoice_rule(billing_pool):
    return RoutingRule.objects.create(
        name="invoices", kind="keyword", pattern="invoice", pool=billing_pool
    )


@pytest.fixture
def client():
    return APIClient()


@pytest.fixture
def created(db):
    return conversation_create(name="Ada")


def bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def handoff(client, created):
    return client.post(
        f"/api/v1/conversations/{created.conversation.id}/handoff/", **bearer(created.token)
    )


def routing_ticket(created, text):
    """A ticket being routed, made directly so that no routing runs."""
    ticket = Ticket.objects.create(conversation=created.conversation, status=Ticket.Status.ROUTING)
    Message.objects.create(
        conversation=created.conversation, ticket=ticket, sender=CUSTOMER, text=text
    )
    return ticket


def bot_texts(created):
    return list(
        Message.objects.filter(conversation=created.conversation, sender=Message.Sender.BOT)
        .order_by("id")
        .values_list("text", flat=True)
    )


def frames(created):
    return [e.frame() for e in event_list_after(conversation_id=created.conversation.id, after=0)]


# --- REST ------------------------------------------------------------------------------------


def test_before_any_message_the_bot_asks_and_the_first_message_skips_the_model(
    client, created, llm, invoice_rule, django_capture_on_commit_callbacks
):
    response = handoff(client, created)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "status", "pool", "pool_name", "last_seq", "messages", "has_more"}
    assert body["status"] is None
    assert body["last_seq"] == 1
    assert [m["sender"] for m in body["messages"]] == ["bot"]
    assert "a person will pick it up" in body["messages"][0]["text"]
    assert Conversation.objects.get(pk=created.conversation.pk).wants_human

    with django_capture_on_commit_callbacks(execute=True):
        message_post(
            conversation=created.conversation,
            text="My invoice shows the wrong address",
            sender=CUSTOMER,
        )
    ticket = Ticket.objects.get(conversation=created.conversation)
    assert ticket.human_requested
    assert ticket.status == Ticket.Status.QUEUED
    assert ticket.pool is not None
    assert ticket.pool.slug == "billing"
    assert bot_texts(created)[-1] == "A person from our Billing team will reply here."
    assert llm.requests == []


def test_during_routing_the_ticket_goes_to_the_pool_the_rules_find(
    client, created, llm, invoice_rule
):
    ticket = routing_ticket(created, "Where is my invoice for March?")
    response = handoff(client, created)
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["pool"]) == ("queued", "billing")
    assert response.json()["pool_name"] == "Billing"
    ticket.refresh_from_db()
    assert ticket.human_requested
    statuses = [f["status"] for f in frames(created) if f["type"] == "status"]
    assert statuses == ["queued"]
    assert bot_texts(created) == ["A person from our Billing team will reply here."]
    assert llm.requests == []


def test_during_routing_with_no_pool_found_a_person_reviews_it(client, created, llm):
    routing_ticket(created, "Something odd happened and I am not sure who to ask")
    response = handoff(client, created)
    assert response.status_code == 200
    assert response.json()["status"] == "in_review"
    assert response.json()["pool"] is None
    assert bot_texts(created) == ["A person will look at your request shortly and reply here."]
    assert llm.requests == []


def test_when_already_queued_it_is_acknowledged_once(client, created, llm, billing_pool):
    ticket = ticket_queue(ticket=routing_ticket(created, "invoice question"), pool=billing_pool)
    for _ in range(2):
        response = handoff(client, created)
        assert response.status_code == 200
        assert (response.json()["status"], response.json()["pool"]) == ("queued", "billing")
    ticket.refresh_from_db()
    assert ticket.human_requested
    assert ticket.status == Ticket.Status.QUEUED
    assert bot_texts(created) == ["A person from our Billing team will reply here."]
    assert llm.requests == []


def test_unknown_or_foreign_conversation_is_refused(client, created):
    other = conversation_create()
    foreign = client.post(
        f"/api/v1/conversations/{other.conversation.id}/handoff/", **bearer(created.token)
    )
    assert foreign.status_code == 404
    unknown = client.post(f"/api/v1/conversations/{uuid.uuid4()}/handoff/", **bearer(created.token))
    assert unknown.status_code == 404
    wrong_token = client.post(
        f"/api/v1/conversations/{created.conversation.id}/handoff/", **bearer("nope")
    )
    assert wrong_token.status_code == 401
    anonymous = client.post(f"/api/v1/conversations/{created.conversation.id}/handoff/")
    assert anonymous.status_code == 401
    assert not Message.objects.exists()
    assert not Conversation.objects.filter(wants_human=True).exists()


def test_handoff_requests_count_against_the_chat_rate_limit(client, created, settings):
    settings.CHAT_RATE_LIMIT = "1/minute"
    assert handoff(client, created).status_code == 200
    refused = handoff(client, created)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert len(bot_texts(created)) == 1


# --- the socket frame --------------------------------------------------------------------------


async def socket_with_hello(created):
    ws = WebsocketCommunicator(application, "/ws/chat/", headers=[ORIGIN])
    connected, _ = await ws.connect()
    assert connected
    await ws.send_json_to(
        {"type": "hello", "conversation": str(created.conversation.id), "token": created.token}
    )
    assert (await ws.receive_json_from())["type"] == "welcome"
    return ws


async def receive_until_quiet(ws, quiet=0.3):
    received = []
    while not await ws.receive_nothing(timeout=quiet):
        received.append(await ws.receive_json_from())
    return received


@pytest.mark.django_db(transaction=True)
async def test_frame_before_any_message_brings_the_bots_question(created, llm):
    ws = await socket_with_hello(created)
    try:
        await ws.send_json_to({"type": "handoff"})
        received = await receive_until_quiet(ws)
    finally:
        await ws.disconnect()
    assert [(f["type"], f["sender"]) for f in received] == [("message", "bot")]
    assert "a person will pick it up" in received[0]["text"]
    wants_human = await database_sync_to_async(
        Conversation.objects.filter(pk=created.conversation.pk, wants_human=True).exists
    )()
    assert wants_human
    assert llm.requests == []


@pytest.mark.django_db(transaction=True)
async def test_frame_during_routing_queues_the_ticket_live(created, llm, invoice_rule):
    await database_sync_to_async(routing_ticket)(created, "My invoice is wrong")
    ws = await socket_with_hello(created)
    try:
        await ws.send_json_to({"type": "handoff"})
        received = await receive_until_quiet(ws)
    finally:
        await ws.disconnect()
    assert [f["type"] for f in received] == ["status", "message"]
    assert (received[0]["status"], received[0]["pool_name"]) == ("queued", "Billing")
    assert received[1]["text"] == "A person from our Billing team will reply here."
    assert llm.requests == []


@pytest.mark.django_db(transaction=True)
async def test_frame_before_hello_is_refused(created):
    ws = WebsocketCommunicator(application, "/ws/chat/", headers=[ORIGIN])
    connected, _ = await ws.connect()
    assert connected
    try:
        await ws.send_json_to({"type": "handoff"})
        assert (await ws.receive_json_from())["code"] == "hello_required"
    finally:
        await ws.disconnect()
    assert not await database_sync_to_async(Message.objects.exists)()

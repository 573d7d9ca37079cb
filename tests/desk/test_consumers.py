"""The desk socket `/ws/desk/` through the real ASGI app: session auth, presence, following
tickets, and what must never reach whom."""

import json
import logging
from contextlib import asynccontextmanager

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from apps.chat.models import Message
from apps.chat.services import ConversationCreated, conversation_create
from apps.desk.services import ticket_note_add, ticket_reroute
from apps.flows.messages import message_post
from apps.pools.models import AgentProfile, Pool
from apps.pools.services import pool_membership_set, pool_upsert, ticket_queue
from apps.tickets.models import Ticket
from supportdesk.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def session_cookie(user) -> tuple[bytes, bytes]:
    """A real login session for `user`, as the browser would send it."""
    client = Client()
    client.force_login(user)
    value = client.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={value}".encode())


@asynccontextmanager
async def desk(user=None, origin=ORIGIN):
    headers = [origin] if origin else []
    if user is not None:
        headers.append(await database_sync_to_async(session_cookie)(user))
    communicator = WebsocketCommunicator(application, "/ws/desk/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    try:
        yield communicator
    finally:
        await communicator.disconnect()


@asynccontextmanager
async def desk_ready(user):
    """A desk socket past its welcome, with the frames of coming online drained."""
    async with desk(user) as ws:
        welcome = await ws.receive_json_from()
        assert welcome["type"] == "welcome"
        await receive_until_quiet(ws)
        yield ws


@asynccontextmanager
async def customer_socket(created: ConversationCreated):
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=[ORIGIN])
    connected, _ = await communicator.connect()
    assert connected
    try:
        await communicator.send_json_to(
            {
                "type": "hello",
                "conversation": str(created.conversation.id),
                "token": created.token,
            }
        )
        assert (await communicator.receive_json_from())["type"] == "welcome"
        await receive_until_quiet(communicator)
        yield communicator
    finally:
        await communicator.disconnect()


async def receive_until_quiet(ws, quiet=0.3):
    frames = []
    while not await ws.receive_nothing(timeout=quiet):
        frames.append(await ws.receive_json_from())
    return frames


async def receive_until(ws, predicate, wait=3):
    """Frames up to and including the first that matches."""
    frames = []
    while True:
        frame = await ws.receive_json_from(timeout=wait)
        frames.append(frame)
        if predicate(frame):
            return frames


async def subscribe(ws, ticket: Ticket) -> None:
    await ws.send_json_to({"type": "subscribe", "ticket": ticket.pk})
    frames = await receive_until(ws, lambda f: f["type"] in ("subscribed", "error"))
    assert frames[-1] == {"type": "subscribed", "ticket": ticket.pk}


def make_user(username: str, *, staff: bool = True, superuser: bool = False):
    return get_user_model().objects.create_user(
        username=username, password="x", is_staff=staff, is_superuser=superuser
    )


def queued_ticket(pool: Pool, text: str) -> tuple[ConversationCreated, Ticket]:
    created = conversation_create(name="Ada")
    message_post(conversation=created.conversation, text=text, sender=Message.Sender.CUSTOMER)
    ticket = Ticket.objects.get(conversation=created.conversation)
    return created, ticket_queue(ticket=ticket, pool=pool)


def customer_says(created: ConversationCreated, text: str) -> None:
    message_post(conversation=created.conversation, text=text, sender=Message.Sender.CUSTOMER)


def profile_of(user) -> AgentProfile:
    return AgentProfile.objects.get(user=user)


@pytest.fixture
def technical_pool(db) -> Pool:
    return pool_upsert(slug="technical", name="Technical", description="Errors and bugs.")


@pytest.fixture
def billing_agent(billing_pool):
    agent = make_user("agent-billing")
    pool_membership_set(user=agent, pools=[billing_pool])
    return agent


@pytest.fixture
def technical_agent(technical_pool):
    agent = make_user("agent-technical")
    pool_membership_set(user=agent, pools=[technical_pool])
    return agent


@pytest.fixture
def supervisor(db):
    return make_user("lead", superuser=True)


@pytest.fixture
def billing_ticket(billing_pool) -> tuple[ConversationCreated, Ticket]:
    return queued_ticket(billing_pool, "Please send me a copy of my latest invoice")


# --- who may connect ----------------------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", "customer account"])
async def test_non_staff_get_auth_failed_and_close_4401(db, who):
    user = None if who == "anonymous" else await database_sync_to_async(make_user)("c", staff=False)
    async with desk(user) as ws:
        assert (await ws.receive_json_from())["code"] == "auth_failed"
        assert await ws.receive_output() == {"type": "websocket.close", "code": 4401}


@pytest.mark.parametrize("origin", [b"https://evil.example", b"null", None])
async def test_foreign_or_missing_origin_is_closed_4403_even_for_staff(billing_agent, origin):
    async with desk(billing_agent, origin=(b"origin", origin) if origin else None) as ws:
        assert (await ws.receive_json_from())["code"] == "origin_not_allowed"
        assert await ws.receive_output() == {"type": "websocket.close", "code": 4403}
    assert (await database_sync_to_async(profile_of)(billing_agent)).presence == "offline"


async def test_a_page_allowed_to_embed_the_widget_may_not_open_the_desk(billing_agent, settings):
    # The shop's pages embed the chat widget; the desk's session cookie is not theirs to use.
    settings.CHAT_ALLOWED_ORIGINS = ["https://shop.example.com"]
    async with desk(billing_agent, origin=(b"origin", b"https://shop.example.com")) as ws:
        assert (await ws.receive_json_from())["code"] == "origin_not_allowed"
        assert await ws.receive_output() == {"type": "websocket.close", "code": 4403}


async def test_deactivating_a_user_closes_their_open_desk_at_once(billing_agent):
    async with desk_ready(billing_agent) as ws:
        billing_agent.is_active = False
        await database_sync_to_async(billing_agent.save)()  # as the admin's user form does
        assert (await ws.receive_json_from())["code"] == "auth_failed"
        assert await ws.receive_output() == {"type": "websocket.close", "code": 4401}


async def test_a_user_no_longer_staff_is_refused_on_their_next_frame(billing_agent):
    async with desk_ready(billing_agent) as ws:
        # Changed behind the model's back (no save signal): the next frame still finds out.
        await database_sync_to_async(get_user_model().objects.filter(pk=billing_agent.pk).update)(
            is_staff=False
        )
        await ws.send_json_to({"type": "ping"})
        assert (await ws.receive_json_from())["code"] == "auth_failed"
        assert await ws.receive_output() == {"type": "websocket.close", "code": 4401}


async def test_the_sites_own_host_on_any_scheme_and_port_may_open_the_desk(billing_agent):
    async with desk(billing_agent, origin=(b"origin", b"https://localhost:4443")) as ws:
        assert (await ws.receive_json_from())["type"] == "welcome"


# --- presence and assignment ---------------------------------------------------------------


async def test_connecting_sets_the_agent_online_and_assigns_them_the_waiting_ticket(
    billing_agent, billing_pool, billing_ticket
):
    _created, ticket = billing_ticket
    assert ticket.status == Ticket.Status.QUEUED  # nobody was online
    async with desk(billing_agent) as ws:
        welcome = await ws.receive_json_from()
        frames = await receive_until(ws, lambda f: f["type"] == "ticket")
        profile = await database_sync_to_async(profile_of)(billing_agent)
        await database_sync_to_async(ticket.refresh_from_db)()
    assert welcome == {
        "type": "welcome",
        "user": {"id": billing_agent.pk, "username": "agent-billing", "name": None},
        "supervisor": False,
        "pools": [billing_pool.pk],
        "presence": "online",
    }
    assert frames[-1] == {
        "type": "ticket",
        "ticket": ticket.pk,
        "change": "assigned",
        "status": "assigned",
        "pool": billing_pool.pk,
        "assignee": billing_agent.pk,
    }
    assert profile.presence == "online"
    assert ticket.assignee_id == billing_agent.pk


async def test_closing_the_last_socket_sets_the_agent_offline(billing_agent):
    async with desk_ready(billing_agent), desk_ready(billing_agent):
        assert (await database_sync_to_async(profile_of)(billing_agent)).sockets == 2
    profile = await database_sync_to_async(profile_of)(billing_agent)
    assert (profile.presence, profile.sockets) == ("offline", 0)


async def test_choosing_away_is_confirmed_and_stored(billing_agent):
    async with desk_ready(billing_agent) as ws:
        await ws.send_json_to({"type": "presence", "presence": "away"})
        frames = await receive_until(ws, lambda f: f["type"] == "presence")
        profile = await database_sync_to_async(profile_of)(billing_agent)
    assert frames[-1] == {"type": "presence", "user": billing_agent.pk, "presence": "away"}
    assert profile.presence == "away"


async def test_a_pool_mate_sees_an_agent_come_online(billing_pool, billing_agent):
    mate = await database_sync_to_async(make_user)("agent-billing-2")
    await database_sync_to_async(pool_membership_set)(user=mate, pools=[billing_pool])
    async with desk_ready(mate) as watcher, desk_ready(billing_agent):
        frames = await receive_until(watcher, lambda f: f["type"] == "presence")
    assert frames[-1] == {"type": "presence", "user": billing_agent.pk, "presence": "online"}


async def test_ping_is_answered_with_pong_and_counts_as_a_heartbeat(billing_agent):
    async with desk_ready(billing_agent) as ws:
        before = (await database_sync_to_async(profile_of)(billing_agent)).last_seen_at
        await ws.send_json_to({"type": "ping"})
        assert await ws.receive_json_from() == {"type": "pong"}
        after = (await database_sync_to_async(profile_of)(billing_agent)).last_seen_at
    assert after > before


# --- following a ticket -----------------------------------------------------------------------


async def test_a_followed_ticket_streams_the_customers_messages(billing_agent, billing_ticket):
    created, ticket = billing_ticket
    async with desk_ready(billing_agent) as ws:
        await subscribe(ws, ticket)
        await database_sync_to_async(customer_says)(created, "It is invoice 2024-117")
        frames = await receive_until(ws, lambda f: f["type"] == "conversation")
    assert frames[-1]["ticket"] == ticket.pk
    assert frames[-1]["frame"]["type"] == "message"
    assert frames[-1]["frame"]["sender"] == "customer"
    assert frames[-1]["frame"]["text"] == "It is invoice 2024-117"


async def test_queue_events_carry_no_customer_text(billing_agent, billing_ticket):
    created, _ticket = billing_ticket
    async with desk_ready(billing_agent) as ws:
        await database_sync_to_async(customer_says)(created, "my card number is secret")
        frames = await receive_until_quiet(ws)
    assert [f["type"] for f in frames] == ["ticket"] * len(frames)
    assert frames
    assert "secret" not in json.dumps(frames)


@pytest.mark.parametrize("which", ["another pool's", "unknown"])
async def test_an_agent_cannot_follow_a_ticket_outside_their_pools(
    billing_agent, technical_pool, which
):
    created, ticket = await database_sync_to_async(queued_ticket)(
        technical_pool, "The app crashes when I log in"
    )
    ticket_id = ticket.pk if which == "another pool's" else ticket.pk + 1000
    async with desk_ready(billing_agent) as ws:
        await ws.send_json_to({"type": "subscribe", "ticket": ticket_id})
        error = await ws.receive_json_from()
        await database_sync_to_async(customer_says)(created, "crash log: NullPointer at login")
        frames = await receive_until_quiet(ws)
    assert error == {"type": "error", "code": "not_found", "message": "No such ticket."}
    assert "NullPointer" not in json.dumps(frames)
    assert "crashes" not in json.dumps(frames)


async def test_a_ticket_moved_to_another_pool_is_unfollowed_and_its_messages_stop(
    billing_agent, technical_pool, supervisor, billing_ticket
):
    created, ticket = billing_ticket
    async with desk_ready(billing_agent) as ws:
        await subscribe(ws, ticket)
        await database_sync_to_async(ticket_reroute)(
            ticket=ticket, actor=supervisor, pool=technical_pool, reason="It is a login problem"
        )
        frames = await receive_until(ws, lambda f: f["type"] == "unsubscribed")
        await database_sync_to_async(customer_says)(created, "here is my password hint")
        after = await receive_until_quiet(ws)
        await ws.send_json_to({"type": "subscribe", "ticket": ticket.pk})
        refused = await receive_until(ws, lambda f: f["type"] == "error")
    assert frames[-1] == {"type": "unsubscribed", "ticket": ticket.pk, "reason": "access_lost"}
    assert "password hint" not in json.dumps(after)
    assert refused[-1]["code"] == "not_found"


async def test_the_new_pools_agent_sees_a_moved_ticket_arrive(
    billing_ticket, technical_agent, technical_pool, supervisor
):
    _created, ticket = billing_ticket
    async with desk_ready(technical_agent) as ws:
        await database_sync_to_async(ticket_reroute)(
            ticket=ticket, actor=supervisor, pool=technical_pool, reason="Login problem"
        )
        frames = await receive_until(ws, lambda f: f["type"] == "ticket")
    assert frames[-1]["ticket"] == ticket.pk
    assert frames[-1]["pool"] == technical_pool.pk


async def test_unsubscribing_stops_the_conversation_stream(billing_agent, billing_ticket):
    created, ticket = billing_ticket
    async with desk_ready(billing_agent) as ws:
        await subscribe(ws, ticket)
        await ws.send_json_to({"type": "unsubscribe", "ticket": ticket.pk})
        assert (await ws.receive_json_from())["type"] == "unsubscribed"
        await database_sync_to_async(customer_says)(created, "are you still there")
        frames = await receive_until_quiet(ws)
    assert [f for f in frames if f["type"] == "conversation"] == []


async def test_a_note_reaches_the_desk_but_never_the_customer(billing_agent, billing_ticket):
    created, ticket = billing_ticket
    async with customer_socket(created) as customer, desk_ready(billing_agent) as ws:
        await subscribe(ws, ticket)
        await database_sync_to_async(ticket_note_add)(
            ticket=ticket, actor=billing_agent, text="VIP customer, be generous"
        )
        frames = await receive_until(ws, lambda f: f["type"] == "note")
        seen_by_customer = await receive_until_quiet(customer)
    assert frames[-1]["ticket"] == ticket.pk
    assert frames[-1]["item"]["text"] == "VIP customer, be generous"
    assert frames[-1]["item"]["author"] == "agent-billing"
    assert "VIP" not in json.dumps(seen_by_customer)


async def test_agent_typing_reaches_the_customer_not_the_desk(billing_agent, billing_ticket):
    created, ticket = billing_ticket
    async with customer_socket(created) as customer, desk_ready(billing_agent) as ws:
        await subscribe(ws, ticket)
        await ws.send_json_to({"type": "typing", "ticket": ticket.pk})
        # Before it, the customer hears that the agent coming online took the ticket.
        seen_by_customer = await receive_until(customer, lambda f: f["type"] == "typing")
        assert await ws.receive_nothing(timeout=0.3)
    assert seen_by_customer[-1] == {"type": "typing", "sender": "agent"}


async def test_customer_typing_reaches_the_desk_following_the_ticket(billing_agent, billing_ticket):
    created, ticket = billing_ticket
    async with customer_socket(created) as customer, desk_ready(billing_agent) as ws:
        await subscribe(ws, ticket)
        await customer.send_json_to({"type": "typing"})
        frames = await receive_until(ws, lambda f: f["type"] == "typing")
    assert frames[-1] == {"type": "typing", "ticket": ticket.pk, "sender": "customer"}


async def test_typing_on_a_ticket_not_followed_is_refused(billing_agent, billing_ticket):
    _created, ticket = billing_ticket
    async with desk_ready(billing_agent) as ws:
        await ws.send_json_to({"type": "typing", "ticket": ticket.pk})
        assert (await ws.receive_json_from())["code"] == "not_found"


async def test_a_supervisor_follows_any_ticket(supervisor, billing_ticket):
    _created, ticket = billing_ticket
    async with desk(supervisor) as ws:
        welcome = await ws.receive_json_from()
        await subscribe(ws, ticket)
    assert welcome["supervisor"] is True


# --- bad frames --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_frame"),
        ('{"ticket": 1}', "invalid_frame"),
        ('{"type": "subscribe"}', "missing_field"),
        ('{"type": "subscribe", "ticket": "1"}', "invalid_frame"),
        ('{"type": "subscribe", "ticket": 0}', "invalid_frame"),
        ('{"type": "subscribe", "ticket": true}', "invalid_frame"),
        ('{"type": "presence", "presence": "offline"}', "invalid_frame"),
        ('{"type": "ping", "pad": "PAD"}', "frame_too_large"),
        ('{"type": "shout"}', "unknown_type"),
    ],
)
async def test_each_bad_frame_gets_its_error_code_and_the_socket_stays_open(
    billing_agent, frame, code
):
    async with desk_ready(billing_agent) as ws:
        await ws.send_to(text_data=frame.replace("PAD", "x" * 70_000))
        error = await ws.receive_json_from()
        assert error["type"] == "error"
        assert error["code"] == code
        assert error["message"]
        await ws.send_json_to({"type": "ping"})
        assert await ws.receive_json_from() == {"type": "pong"}


async def test_a_deeply_nested_frame_gets_an_error_frame_and_the_socket_keeps_serving(
    billing_agent, caplog
):
    caplog.set_level(logging.INFO)
    async with desk_ready(billing_agent) as ws:
        # issue 12, finding 2: this frame raised RecursionError in json.loads.
        await ws.send_to(text_data="[" * 30000 + "]" * 30000)
        error = await ws.receive_json_from()
        assert (error["type"], error["code"]) == ("error", "invalid_frame")
        await ws.send_json_to({"type": "ping"})
        assert await ws.receive_json_from() == {"type": "pong"}
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_binary_frames_are_refused(billing_agent):
    async with desk_ready(billing_agent) as ws:
        await ws.send_to(bytes_data=b"\x00\x01")
        assert (await ws.receive_json_from())["code"] == "invalid_frame"


async def test_a_queue_event_reaches_a_socket_in_several_of_its_groups_once(
    billing_pool, billing_ticket
):
    # A superuser who is also a billing member is in desk.all, desk.pool.<billing> and, once
    # assigned, desk.user.<id>: each event is published to all three.
    lead = await database_sync_to_async(make_user)("lead-member", superuser=True)
    await database_sync_to_async(pool_membership_set)(user=lead, pools=[billing_pool])
    _created, ticket = billing_ticket
    async with desk_ready(lead) as ws:
        await database_sync_to_async(customer_says)(_created, "any news?")
        frames = await receive_until_quiet(ws)
    events = [f for f in frames if f["type"] == "ticket" and f["ticket"] == ticket.pk]
    assert [event["change"] for event in events] == ["message"]


async def test_a_heartbeat_after_the_sweep_marked_the_agent_offline_brings_them_back(
    billing_agent,
):
    async with desk_ready(billing_agent) as ws:
        # The sweep saw no heartbeat for too long (a stalled server) and marked them offline.
        await database_sync_to_async(
            lambda: AgentProfile.objects.filter(user=billing_agent).update(
                sockets=0, presence="offline"
            )
        )()
        await ws.send_json_to({"type": "ping"})
        assert await ws.receive_json_from() == {"type": "pong"}
        profile = await database_sync_to_async(profile_of)(billing_agent)
    assert (profile.presence, profile.sockets) == ("online", 1)

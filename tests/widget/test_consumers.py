import asyncio
import json
import logging
import threading
import uuid
from contextlib import asynccontextmanager
from unittest import mock

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db.models.sql.compiler import SQLCompiler
from django.test import override_settings

from apps.chat.models import Message
from apps.chat.selectors import event_list_after
from apps.chat.services import conversation_create, conversation_group
from apps.flows.messages import message_post
from apps.tickets.models import Ticket
from apps.tickets.services import ticket_status_set
from supportdesk.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


@asynccontextmanager
async def socket(origin=ORIGIN):
    communicator = WebsocketCommunicator(
        application, "/ws/chat/", headers=[origin] if origin else []
    )
    connected, _ = await communicator.connect()
    assert connected
    try:
        yield communicator
    finally:
        await communicator.disconnect()


async def hello(ws, created, last_seq=0):
    await ws.send_json_to(
        {
            "type": "hello",
            "conversation": str(created.conversation.id),
            "token": created.token,
            "last_seq": last_seq,
        }
    )
    return await ws.receive_json_from()


async def receive_until_quiet(ws, quiet=0.3):
    frames = []
    while not await ws.receive_nothing(timeout=quiet):
        frames.append(await ws.receive_json_from())
    return frames


@pytest.fixture
def created(db):
    return conversation_create()


async def test_hello_then_message_comes_back_as_an_event_with_status(created):
    async with socket() as ws:
        assert await hello(ws, created) == {"type": "welcome", "seq": 0}
        client_id = str(uuid.uuid4())
        await ws.send_json_to(
            {"type": "message", "client_id": client_id, "text": "My invoice is wrong"}
        )
        # The first message of a test process pays for its first routing (model load) too.
        message = await ws.receive_json_from(timeout=10)
        status = await ws.receive_json_from(timeout=10)
    assert message["type"] == "message"
    assert message["seq"] == 1
    assert message["client_id"] == client_id
    assert message["sender"] == "customer"
    assert message["text"] == "My invoice is wrong"
    assert status == {
        "type": "status",
        "seq": 2,
        "status": "routing",
        "pool": None,
        "pool_name": None,
    }


async def test_reconnect_with_last_seq_gets_exactly_the_missed_events(created):
    post = database_sync_to_async(message_post)
    for text in ["one", "two", "three"]:
        await post(conversation=created.conversation, text=text, sender=Message.Sender.CUSTOMER)
    stored = await database_sync_to_async(event_list_after)(
        conversation_id=created.conversation.id, after=0
    )
    # 1 "one", 2 status routing, 3 status after routing, 4 "two", 5 "three". The client saw 3.
    assert [e.seq for e in stored] == [1, 2, 3, 4, 5]
    async with socket() as ws:
        assert await hello(ws, created, last_seq=3) == {"type": "welcome", "seq": 5}
        frames = await receive_until_quiet(ws)
    assert [(f["seq"], f.get("text")) for f in frames] == [(4, "two"), (5, "three")]


async def test_a_hello_with_missed_events_compiles_no_select_through_the_orm(created):
    """Every socket's hello reads the conversation by its token, its latest seq and the events
    it missed (and a quiet socket reads the last again): statements written once per shape
    (apps/core/sql.py), not compiled by the ORM each time."""
    post = database_sync_to_async(message_post)
    await post(conversation=created.conversation, text="one", sender=Message.Sender.CUSTOMER)
    compiled: list[str] = []
    original = SQLCompiler.as_sql

    def as_sql(compiler, *args, **kwargs):
        compiled.append(type(compiler).__name__)
        return original(compiler, *args, **kwargs)

    with mock.patch.object(SQLCompiler, "as_sql", as_sql):
        async with socket() as ws:
            assert await hello(ws, created, last_seq=1) == {"type": "welcome", "seq": 3}
            frames = await receive_until_quiet(ws)
    assert [f["seq"] for f in frames] == [2, 3]
    assert "SQLCompiler" not in compiled, compiled


async def test_events_while_connected_arrive_once_and_in_order(created):
    async with socket() as ws:
        await hello(ws, created)
        post = database_sync_to_async(message_post)
        await post(
            conversation=created.conversation,
            text="via another path",
            sender=Message.Sender.CUSTOMER,
        )
        ticket = await database_sync_to_async(Ticket.objects.get)(conversation=created.conversation)
        await database_sync_to_async(ticket_status_set)(
            ticket=ticket, status=Ticket.Status.RESOLVED
        )
        frames = await receive_until_quiet(ws)
    # message, status routing, status after routing (no model: review), resolved
    assert [f["seq"] for f in frames] == [1, 2, 3, 4]
    assert [f.get("status") for f in frames] == [None, "routing", "in_review", "resolved"]


async def test_second_socket_of_the_same_conversation_sees_messages_live(created):
    async with socket() as first, socket() as second:
        await hello(first, created)
        await hello(second, created)
        await first.send_json_to({"type": "message", "client_id": str(uuid.uuid4()), "text": "hi"})
        seen_by_second = await receive_until_quiet(second)
    assert [f["type"] for f in seen_by_second] == ["message", "status", "status"]
    assert [f["seq"] for f in seen_by_second] == [1, 2, 3]


async def test_duplicate_client_id_after_reconnect_stores_one_message(created):
    client_id = str(uuid.uuid4())
    async with socket() as ws:
        await hello(ws, created)
        await ws.send_json_to({"type": "message", "client_id": client_id, "text": "hello"})
        first = await receive_until_quiet(ws)
    async with socket() as ws:
        await hello(ws, created, last_seq=first[-1]["seq"])
        await ws.send_json_to({"type": "message", "client_id": client_id, "text": "hello"})
        assert await receive_until_quiet(ws) == []
    count = await database_sync_to_async(
        Message.objects.filter(conversation=created.conversation).count
    )()
    assert count == 1


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_frame"),
        ('{"text": "no type"}', "invalid_frame"),
        ('{"type": "shout"}', "unknown_type"),
        ('{"type": "message", "text": "no client id"}', "missing_field"),
        ('{"type": "message", "client_id": "not-a-uuid", "text": "x"}', "invalid_frame"),
        ('{"type": "message", "client_id": "CID", "text": 5}', "invalid_frame"),
        ('{"type": "message", "client_id": "CID", "text": ""}', "empty_text"),
        ('{"type": "message", "client_id": "CID", "text": "   "}', "empty_text"),
        ('{"type": "message", "client_id": "CID", "text": "LONG"}', "text_too_long"),
        ('{"type": "message", "client_id": "CID", "text": "a\\u0000b"}', "invalid_text"),
        ('{"type": "message", "client_id": "CID", "text": "pay \\u202eevil"}', "invalid_text"),
        ('{"type": "hello", "conversation": "CONV", "token": "TOKEN"}', "already_authenticated"),
    ],
)
async def test_each_bad_frame_gets_its_error_code_and_the_socket_stays_open(created, frame, code):
    frame = (
        frame.replace("CID", str(uuid.uuid4()))
        .replace("LONG", "x" * 4001)
        .replace("CONV", str(created.conversation.id))
        .replace("TOKEN", created.token)
    )
    async with socket() as ws:
        await hello(ws, created)
        await ws.send_to(text_data=frame)
        error = await ws.receive_json_from()
        assert error["type"] == "error"
        assert error["code"] == code
        assert error["message"]
        # Still open and working.
        await ws.send_json_to(
            {"type": "message", "client_id": str(uuid.uuid4()), "text": "still here"}
        )
        assert (await ws.receive_json_from())["text"] == "still here"
    assert await database_sync_to_async(Message.objects.count)() == 1


async def test_error_for_a_message_frame_names_its_client_id(created):
    client_id = str(uuid.uuid4())
    async with socket() as ws:
        await hello(ws, created)
        await ws.send_json_to({"type": "message", "client_id": client_id, "text": " "})
        error = await ws.receive_json_from()
    assert error["client_id"] == client_id


async def test_binary_and_oversized_frames_are_refused(created):
    async with socket() as ws:
        await hello(ws, created)
        await ws.send_to(bytes_data=b"\x00\x01")
        assert (await ws.receive_json_from())["code"] == "invalid_frame"
        await ws.send_to(text_data=json.dumps({"type": "typing", "pad": "x" * 70_000}))
        assert (await ws.receive_json_from())["code"] == "frame_too_large"


DEEPLY_NESTED = "[" * 30000 + "]" * 30000  # issue 12, finding 2: RecursionError in json.loads


@pytest.mark.parametrize("authenticated", [False, True], ids=["before-hello", "after-hello"])
async def test_a_deeply_nested_frame_gets_an_error_frame_and_the_socket_keeps_serving(
    created, caplog, authenticated
):
    caplog.set_level(logging.INFO)
    async with socket() as ws:
        if authenticated:
            await hello(ws, created)
        await ws.send_to(text_data=DEEPLY_NESTED)
        error = await ws.receive_json_from()
        assert error["type"] == "error"
        assert error["code"] == "invalid_frame"
        assert "32" in error["message"]  # says the limit
        if authenticated:
            await ws.send_json_to({"type": "message", "client_id": str(uuid.uuid4()), "text": "ok"})
            assert (await ws.receive_json_from())["text"] == "ok"
        else:
            assert await hello(ws, created) == {"type": "welcome", "seq": 0}
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_a_lone_surrogate_in_a_hello_token_gets_an_error_frame_not_a_crash(created, caplog):
    # Found by tests/widget/test_socket_fuzz.py: hashing the token raised UnicodeEncodeError.
    caplog.set_level(logging.INFO)
    async with socket() as ws:
        await ws.send_to(
            text_data=json.dumps(
                {"type": "hello", "conversation": str(created.conversation.id), "token": "\ud800"}
            )
        )
        assert (await ws.receive_json_from())["code"] == "invalid_frame"
        assert await hello(ws, created) == {"type": "welcome", "seq": 0}
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_message_before_hello_is_refused(created):
    async with socket() as ws:
        await ws.send_json_to({"type": "message", "client_id": str(uuid.uuid4()), "text": "hi"})
        assert (await ws.receive_json_from())["code"] == "hello_required"


@pytest.mark.parametrize("wrong", ["token", "conversation"])
async def test_wrong_credentials_get_auth_failed_and_close(created, wrong):
    other = await database_sync_to_async(conversation_create)()
    frame = {"type": "hello", "conversation": str(created.conversation.id), "token": created.token}
    if wrong == "token":
        frame["token"] = "not-the-token"
    else:
        frame["conversation"] = str(other.conversation.id)  # a real id, but not this token's
    async with socket() as ws:
        await ws.send_json_to(frame)
        assert (await ws.receive_json_from())["code"] == "auth_failed"
        assert await ws.receive_output() == {"type": "websocket.close", "code": 4401}


@override_settings(CHAT_HELLO_TIMEOUT_SECONDS=0.2)
async def test_a_socket_that_never_says_hello_is_closed(created):
    async with socket() as ws:
        assert (await ws.receive_json_from(timeout=2))["code"] == "hello_timeout"
        assert await ws.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}


@override_settings(CHAT_HELLO_TIMEOUT_SECONDS=0.2)
async def test_an_authenticated_socket_is_not_closed_by_the_hello_timeout(created):
    async with socket() as ws:
        await hello(ws, created)
        assert await ws.receive_nothing(timeout=0.5)


async def test_foreign_origin_gets_an_error_frame_and_is_closed(created):
    async with socket(origin=(b"origin", b"https://evil.example")) as ws:
        assert (await ws.receive_json_from())["code"] == "origin_not_allowed"
        assert await ws.receive_output() == {"type": "websocket.close", "code": 4403}


@override_settings(CHAT_RATE_LIMIT="2/minute")
async def test_rate_limited_message_gets_an_error_frame_with_retry_after(created):
    async with socket() as ws:
        await hello(ws, created)
        for n in range(2):
            await ws.send_json_to(
                {"type": "message", "client_id": str(uuid.uuid4()), "text": f"m{n}"}
            )
        await receive_until_quiet(ws)
        await ws.send_json_to({"type": "message", "client_id": str(uuid.uuid4()), "text": "m3"})
        error = await ws.receive_json_from()
    assert error["code"] == "rate_limited"
    assert error["retry_after"] >= 1


async def test_typing_reaches_other_participants_but_not_the_sender(created):
    layer = get_channel_layer()
    staff_channel = await layer.new_channel()
    await layer.group_add(conversation_group(created.conversation.id), staff_channel)
    async with socket() as customer:
        await hello(customer, created)
        await customer.send_json_to({"type": "typing"})
        relayed = await layer.receive(staff_channel)
        assert await customer.receive_nothing(timeout=0.2)
    assert relayed["type"] == "conversation.typing"
    assert relayed["sender"] == "customer"


async def test_agent_typing_is_shown_to_the_customer(created):
    async with socket() as customer:
        await hello(customer, created)
        await get_channel_layer().group_send(
            conversation_group(created.conversation.id),
            {"type": "conversation.typing", "sender": "agent", "origin": "desk"},
        )
        assert await customer.receive_json_from() == {"type": "typing", "sender": "agent"}


async def test_an_event_reaches_the_socket_while_the_database_thread_is_busy(created):
    """Relaying a group event needs no database: it must not wait in line for the one database
    thread that every socket's writes share (a busy hour would delay every event)."""
    busy = threading.Event()
    release = threading.Event()

    def hold_the_database_thread():
        busy.set()
        release.wait(10)

    async with socket() as customer:
        await hello(customer, created)
        holder = asyncio.create_task(database_sync_to_async(hold_the_database_thread)())
        await asyncio.to_thread(busy.wait, 5)
        try:
            await get_channel_layer().group_send(
                conversation_group(created.conversation.id),
                {"type": "conversation.typing", "sender": "agent", "origin": "desk"},
            )
            assert await customer.receive_json_from(timeout=2) == {
                "type": "typing",
                "sender": "agent",
            }
        finally:
            release.set()
            await holder


def _store_without_publishing(conversation_id) -> int:
    """An event committed by a process that died before it published it (a worker killed
    between its commit and the channel-layer send)."""
    from apps.chat.models import Conversation, ConversationEvent

    conversation = Conversation.objects.get(pk=conversation_id)
    seq = conversation.last_seq + 1
    ConversationEvent.objects.create(
        conversation=conversation,
        seq=seq,
        type=ConversationEvent.Type.STATUS,
        payload={"status": "queued", "pool": "billing", "pool_name": "Billing"},
    )
    Conversation.objects.filter(pk=conversation_id).update(last_seq=seq)
    return seq


@override_settings(CHAT_RESYNC_SECONDS=0.3)
async def test_a_quiet_socket_reads_an_event_that_was_stored_but_never_published(created):
    async with socket() as ws:
        assert (await hello(ws, created))["type"] == "welcome"
        seq = await database_sync_to_async(_store_without_publishing)(created.conversation.id)
        frame = await ws.receive_json_from(timeout=3)
        assert (frame["type"], frame["seq"], frame["status"]) == ("status", seq, "queued")
        # Read once: the next resyncs find nothing new and send nothing twice.
        assert await ws.receive_nothing(timeout=1.0)

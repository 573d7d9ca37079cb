"""Fuzzing the customer socket `/ws/chat/` with hypothesis, before and after hello.

Whatever a client sends, each frame the protocol refuses gets exactly one `error` frame with a
documented code and each valid one its normal answer; the socket stays open unless the
protocol closes it, still serves a valid frame afterwards, sends no event twice, and never
carries a word of another conversation (one with a known secret, which gets a new message
after every example). Each frame is followed by a probe (tests/fakes/frames.py), so what the
frame caused is what arrives before the probe's answer.
"""

import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from hypothesis import given
from hypothesis import strategies as st

from apps.chat.models import Message
from apps.chat.services import ConversationCreated, conversation_create
from apps.flows.messages import message_post
from supportdesk.asgi import application
from tests.fakes.frames import (
    INVALID,
    WAIT,
    Frame,
    Watch,
    decoded,
    error_of,
    frames,
    fresh_client_id,
    is_uuid,
    json_frame,
    near_valid,
    numbers,
    send,
    strings,
    text_acceptable,
    uuid_like,
)
from tests.fuzz import FUZZ, LIMITS

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
# docs/protocol.md, Error codes.
ERROR_CODES = {
    "invalid_json",
    "invalid_frame",
    "frame_too_large",
    "unknown_type",
    "missing_field",
    "hello_required",
    "already_authenticated",
    "auth_failed",
    "hello_timeout",
    "empty_text",
    "text_too_long",
    "invalid_text",
    "rate_limited",
    "origin_not_allowed",
    "unavailable",
}
CLOSING_CODES = {"auth_failed": 4401, "hello_timeout": 4401, "origin_not_allowed": 4403}
EVENTS = {"message", "status", "typing"}  # what a conversation may push at any moment
KEYS = ["type", "conversation", "token", "last_seq", "client_id", "text"]
NO_REPLAY = 2**31  # a hello's last_seq past every event: the welcome replays nothing


@dataclass
class Chat:
    """The fuzzed customer's conversation and another one whose data must never show."""

    mine: ConversationCreated
    other: ConversationCreated
    secret: str

    @property
    def forbidden(self) -> list[str]:
        conversation = self.other.conversation
        return [self.secret, self.other.token, str(conversation.id), conversation.id.hex]


@pytest.fixture
def chat(db) -> Chat:
    mine = conversation_create(name="Fuzz")
    other = conversation_create(name="Other")
    secret = f"secret-{uuid.uuid4().hex}"
    message_post(conversation=other.conversation, text=secret, sender=Message.Sender.CUSTOMER)
    return Chat(mine=mine, other=other, secret=secret)


# --- frames ----------------------------------------------------------------------------------


def hellos(chat: Chat) -> st.SearchStrategy[dict[str, Any]]:
    """Hello frames with every credential but a right pair: this conversation's token only
    with another id, the other conversation's token only with this one's id."""
    mine, other = chat.mine.conversation, chat.other.conversation
    return st.one_of(
        st.fixed_dictionaries(
            {
                "type": st.just("hello"),
                "conversation": st.one_of(st.just(str(other.id)), uuid_like),
                "token": st.just(chat.mine.token),
            },
            optional={"last_seq": numbers},
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("hello"),
                "conversation": st.sampled_from([str(mine.id), str(mine.id).upper()]),
                "token": st.one_of(st.just(chat.other.token), strings),
            },
            optional={"last_seq": numbers},
        ),
    )


def messages() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("message"), "client_id": st.uuids().map(str), "text": strings}
        ),
        st.just({"type": "typing"}),
        st.just({"type": "handoff"}),
    )


FIELDS = {
    "client_id": uuid_like,
    "text": strings,
    "conversation": uuid_like,
    "token": strings,
    "last_seq": numbers,
}


def any_frames(chat: Chat) -> st.SearchStrategy[Frame]:
    return frames(near_valid(st.one_of(messages(), hellos(chat)), FIELDS, KEYS), KEYS)


def accepted_after_hello(value: Any) -> bool:
    """Whether an authenticated socket accepts this decoded frame (docs/protocol.md)."""
    if value is INVALID or not isinstance(value, dict):
        return False
    kind = value.get("type")
    if kind in ("typing", "handoff"):
        return True
    if kind == "message":
        return is_uuid(value.get("client_id")) and text_acceptable(value.get("text"))
    return False  # a second hello, an unknown or missing type


# --- the socket ------------------------------------------------------------------------------


@asynccontextmanager
async def chat_socket(chat: Chat):
    ws = WebsocketCommunicator(application, "/ws/chat/", headers=[ORIGIN])
    connected, _ = await ws.connect()
    assert connected
    try:
        yield Watch(ws, chat.forbidden)
    finally:
        await ws.disconnect()


async def hello(watch: Watch, chat: Chat) -> dict[str, Any]:
    await watch.ws.send_json_to(
        {
            "type": "hello",
            "conversation": str(chat.mine.conversation.id),
            "token": chat.mine.token,
            "last_seq": NO_REPLAY,
        }
    )
    return await watch.next()


@database_sync_to_async
def stored(chat: Chat, client_id: str) -> int:
    return Message.objects.filter(
        conversation=chat.mine.conversation, client_id=uuid.UUID(client_id)
    ).count()


@database_sync_to_async
def secret_again(chat: Chat) -> None:
    message_post(
        conversation=chat.other.conversation, text=chat.secret, sender=Message.Sender.CUSTOMER
    )


async def refused_before_hello(chat: Chat, frame: Frame) -> None:
    """Before a hello every frame is refused (none here carries a right pair of credentials):
    one error; closed if the protocol says so, else a hello is still welcomed."""
    async with chat_socket(chat) as watch:
        await send(watch.ws, frame)
        error = await watch.next()
        assert error["type"] == "error", error
        assert error["code"] in ERROR_CODES, error
        if error["code"] in CLOSING_CODES:
            close = await watch.ws.receive_output(timeout=WAIT)
            assert close == {"type": "websocket.close", "code": CLOSING_CODES[error["code"]]}
            return
        assert await hello(watch, chat) == {"type": "welcome", "seq": 0}
        await secret_again(chat)
        await watch.quiet()


async def answered_after_hello(chat: Chat, sequence: list[Frame]) -> None:
    """After a hello: one error for each refused frame, none for an accepted one; then a
    valid message still comes back, and every new message accepted before it came back too."""
    async with chat_socket(chat) as watch:
        assert (await hello(watch, chat))["type"] == "welcome"
        new_messages = []
        for number, frame in enumerate(sequence):
            value = decoded(frame)
            accepted = accepted_after_hello(value)
            if accepted and value["type"] == "message":
                client_id = str(uuid.UUID(value["client_id"]))
                if not await stored(chat, client_id):
                    new_messages.append(client_id)
            await send(watch.ws, frame)
            error = error_of(await watch.probe(number), codes=ERROR_CODES, others=EVENTS)
            if accepted:
                assert error is None, f"{frame!r} was refused: {error}"
            else:
                assert error is not None, f"no error for {frame!r}"
                assert error["code"] not in CLOSING_CODES, error
        last = fresh_client_id()
        await watch.ws.send_json_to({"type": "message", "client_id": last, "text": "still here"})
        await watch.until(lambda f: f["type"] == "message" and f["client_id"] == last)
        await secret_again(chat)
        await watch.quiet()
    # Events come in order (the consumer fills gaps), so the last message's came after these.
    seen = {f["client_id"] for f in watch.received if f["type"] == "message"}
    assert set(new_messages) <= seen
    for client_id in new_messages:
        assert await stored(chat, client_id) == 1
    seqs = [f["seq"] for f in watch.received if "seq" in f and f["type"] != "welcome"]
    assert seqs == sorted(set(seqs)), "an event was sent twice or out of order"


# --- properties ------------------------------------------------------------------------------


@LIMITS
@FUZZ
@given(data=st.data())
async def test_any_frame_before_hello_gets_one_error_and_hello_still_works(chat, data):
    await refused_before_hello(chat, data.draw(any_frames(chat), label="frame"))


@LIMITS
@FUZZ
@given(data=st.data())
async def test_a_near_valid_hello_gets_one_error_and_closes_only_on_auth_failed(chat, data):
    hello_frame = data.draw(near_valid(hellos(chat), FIELDS, KEYS), label="hello")
    await refused_before_hello(chat, json_frame(hello_frame))


@LIMITS
@FUZZ
@given(data=st.data())
async def test_any_frames_after_hello_get_one_error_each_or_their_answer(chat, data):
    sequence = data.draw(st.lists(any_frames(chat), min_size=1, max_size=4), label="frames")
    await answered_after_hello(chat, sequence)


@LIMITS
@FUZZ
@given(data=st.data())
async def test_near_valid_messages_after_hello_are_stored_once_or_refused_once(chat, data):
    near = near_valid(st.one_of(messages(), hellos(chat)), FIELDS, KEYS).map(json_frame)
    sequence = data.draw(st.lists(near, min_size=1, max_size=4), label="frames")
    await answered_after_hello(chat, sequence)

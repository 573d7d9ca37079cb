"""Fuzzing the desk socket `/ws/desk/` with hypothesis, signed in and not.

An agent of the billing pool sends anything: each frame docs/desk.md refuses gets exactly one
`error` frame with a documented code, each valid one its answer (`subscribed`, `unsubscribed`,
`presence`, `pong`; nothing for typing); the socket stays open and still answers a ping; and
nothing of a ticket in another pool (its customer's secret, which gets a new message after
every example) ever reaches it. An anonymous socket is refused once and ignores the rest.
Each frame is followed by a probe (tests/fakes/frames.py).
"""

import re
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from apps.chat.models import Message
from apps.chat.services import conversation_create
from apps.flows.messages import message_post
from apps.pools.models import Pool
from apps.pools.services import pool_membership_set, pool_upsert, ticket_queue
from apps.tickets.models import Ticket
from supportdesk.asgi import application
from tests.fakes.frames import (
    INVALID,
    WAIT,
    Frame,
    Watch,
    decoded,
    error_of,
    frames,
    is_json_integer,
    json_frame,
    near_valid,
    numbers,
    send,
    strings,
)
from tests.fuzz import FUZZ, LIMITS

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
# docs/desk.md, the error frame.
ERROR_CODES = {
    "invalid_json",
    "invalid_frame",
    "frame_too_large",
    "missing_field",
    "unknown_type",
    "not_found",
    "rate_limited",
    "conflict",
}
# What a desk may be sent at any moment besides the answers to its own frames.
PUSHED = {"ticket", "presence", "conversation", "typing", "note", "activity", "draft", "context"}
ANSWERS = {"subscribed", "unsubscribed", "presence", "pong"}  # to subscribe, ..., ping
KEYS = ["type", "ticket", "presence"]


@dataclass
class Desk:
    """A billing agent with a billing ticket, and a technical ticket with a secret."""

    agent: Any
    cookie: tuple[bytes, bytes]
    mine: Ticket
    other: Ticket
    secret: str
    followed: set[int] = field(default_factory=set)

    @property
    def forbidden(self) -> list[str]:
        conversation = self.other.conversation_id
        return [self.secret, str(conversation), conversation.hex]


def queued_ticket(pool: Pool, text: str) -> Ticket:
    created = conversation_create(name="Ada")
    message_post(conversation=created.conversation, text=text, sender=Message.Sender.CUSTOMER)
    ticket = Ticket.objects.get(conversation=created.conversation)
    return ticket_queue(ticket=ticket, pool=pool)


@pytest.fixture
def desk(db) -> Desk:
    billing = pool_upsert(slug="billing", name="Billing", description="Invoices.")
    technical = pool_upsert(slug="technical", name="Technical", description="Errors.")
    agent = get_user_model().objects.create_user(username="agent-billing", is_staff=True)
    pool_membership_set(user=agent, pools=[billing])
    client = Client()
    client.force_login(agent)
    name = settings.SESSION_COOKIE_NAME
    cookie = (b"cookie", f"{name}={client.cookies[name].value}".encode())
    secret = f"secret-{uuid.uuid4().hex}"
    return Desk(
        agent=agent,
        cookie=cookie,
        mine=queued_ticket(billing, "Please send me my invoice"),
        other=queued_ticket(technical, secret),
        secret=secret,
    )


# --- frames ----------------------------------------------------------------------------------


def near_valid_desk_frames(desk: Desk) -> st.SearchStrategy[dict[str, Any]]:
    tickets = st.one_of(
        st.sampled_from([desk.mine.pk, desk.other.pk, desk.other.pk + 1000]),
        st.sampled_from([float(desk.mine.pk), float(desk.other.pk), str(desk.mine.pk)]),
        numbers,
        strings,
        st.none(),
        st.booleans(),
        st.lists(st.just(desk.mine.pk), max_size=2),
    )
    presences = st.one_of(
        st.sampled_from(["online", "away", "offline", "Online", "away ", ""]), strings
    )
    bases = st.one_of(
        st.fixed_dictionaries(
            {"type": st.sampled_from(["subscribe", "unsubscribe", "typing"]), "ticket": tickets}
        ),
        st.fixed_dictionaries({"type": st.just("presence"), "presence": presences}),
        st.just({"type": "ping"}),
    )
    return near_valid(bases, {"ticket": tickets, "presence": presences}, KEYS)


def desk_frames(desk: Desk) -> st.SearchStrategy[Frame]:
    return frames(near_valid_desk_frames(desk), KEYS)


def expected(value: Any, desk: Desk) -> tuple[bool, str | None, int | None]:
    """(accepted, the type of its answer, its ticket) for a decoded frame (docs/desk.md), with
    the tickets this socket follows so far."""
    if value is INVALID or not isinstance(value, dict):
        return False, None, None
    kind = value.get("type")
    if kind == "ping":
        return True, "pong", None
    if kind == "presence":
        return value.get("presence") in ("online", "away"), "presence", None
    if kind not in ("subscribe", "unsubscribe", "typing"):
        return False, None, None
    number: Any = value.get("ticket")
    if not is_json_integer(number) or number < 1:
        return False, None, None
    ticket = int(number)
    if kind == "subscribe":
        return ticket == desk.mine.pk, "subscribed", ticket
    if kind == "unsubscribe":
        return True, "unsubscribed", ticket
    return ticket in desk.followed, None, ticket  # typing: only on a followed ticket


# --- the socket ------------------------------------------------------------------------------


@asynccontextmanager
async def desk_socket(desk: Desk, *, signed_in: bool = True):
    headers = [ORIGIN, desk.cookie] if signed_in else [ORIGIN]
    ws = WebsocketCommunicator(application, "/ws/desk/", headers=headers)
    connected, _ = await ws.connect()
    assert connected
    try:
        yield Watch(ws, desk.forbidden)
    finally:
        await ws.disconnect()


@database_sync_to_async
def secret_again(desk: Desk) -> None:
    conversation = desk.other.conversation
    message_post(conversation=conversation, text=desk.secret, sender=Message.Sender.CUSTOMER)


def about_the_other_ticket(frame: dict[str, Any], desk: Desk) -> bool:
    # `unsubscribed` echoes whatever id the client sent; everything else is the server's word.
    return frame.get("ticket") == desk.other.pk and frame["type"] != "unsubscribed"


async def answered(desk: Desk, sequence: list[Frame]) -> None:
    desk.followed = set()
    async with desk_socket(desk) as watch:
        assert (await watch.next())["type"] == "welcome"
        for number, frame in enumerate(sequence):
            accepted, answer, ticket = expected(decoded(frame), desk)
            await send(watch.ws, frame)
            received = await watch.probe(number)
            error = error_of(received, codes=ERROR_CODES, others=PUSHED | ANSWERS)
            if not accepted:
                assert error is not None, f"no error for {frame!r}"
                continue
            assert error is None, f"{frame!r} was refused: {error}"
            if answer is not None:
                answers = [f for f in received if f["type"] == answer and answer != "presence"]
                answers += [
                    f
                    for f in received
                    if f["type"] == answer == "presence" and f["user"] == desk.agent.pk
                ]
                assert answers, f"no {answer} for {frame!r}: {received}"
            if answer == "subscribed":
                assert ticket is not None
                desk.followed.add(ticket)
            elif answer == "unsubscribed":
                desk.followed.discard(ticket)
        await watch.ws.send_json_to({"type": "ping"})
        await watch.until(lambda f: f["type"] == "pong")
        await secret_again(desk)
        await watch.quiet()
    leaked = [f for f in watch.received if about_the_other_ticket(f, desk)]
    assert not leaked, leaked


# --- properties ------------------------------------------------------------------------------


@LIMITS
@FUZZ
@given(data=st.data())
async def test_any_frames_on_the_desk_get_one_error_each_or_their_answer(desk, data):
    sequence = data.draw(st.lists(desk_frames(desk), min_size=1, max_size=5), label="frames")
    await answered(desk, sequence)


@LIMITS
@FUZZ
@given(data=st.data())
async def test_near_valid_desk_frames_never_open_another_pools_ticket(desk, data):
    near = near_valid_desk_frames(desk).map(json_frame)
    sequence = data.draw(st.lists(near, min_size=1, max_size=5), label="frames")
    await answered(desk, sequence)


@LIMITS
@FUZZ
@given(data=st.data())
async def test_a_socket_not_signed_in_is_refused_once_and_ignores_every_frame(desk, data):
    sequence = data.draw(st.lists(desk_frames(desk), min_size=1, max_size=3), label="frames")
    async with desk_socket(desk, signed_in=False) as watch:
        error = await watch.next()
        assert error["code"] == "auth_failed"
        assert await watch.ws.receive_output(timeout=WAIT) == {
            "type": "websocket.close",
            "code": 4401,
        }
        for frame in [*sequence, json_frame({"type": "ping"})]:
            await send(watch.ws, frame)
        assert await watch.ws.receive_nothing(timeout=0.1)


# --- the desk page's socket (`?format=html`) -------------------------------------------------

PAGE_KEYS = ["type", "ticket", "presence", "tab", "filter"]
ERROR_PIECE = re.compile(r'id="desk-error"[^>]*data-code="([a-z_]+)"')


def near_valid_page_frames(desk: Desk) -> st.SearchStrategy[dict[str, Any]]:
    tickets = st.one_of(
        st.sampled_from([desk.mine.pk, desk.other.pk, desk.other.pk + 1000, None]),
        numbers,
        strings,
        st.booleans(),
    )
    tabs = st.one_of(
        st.sampled_from(["mine", "all", "pool:billing", "pool:technical", "pool:<b>x</b>"]),
        strings,
        numbers,
    )
    filters = st.one_of(st.sampled_from(["open", "queued", "all", "resolved"]), strings)
    views = st.fixed_dictionaries(
        {"type": st.just("view"), "tab": tabs, "filter": filters, "ticket": tickets}
    )
    fields = {"ticket": tickets, "tab": tabs, "filter": filters, "presence": st.just("away")}
    return st.one_of(near_valid(views, fields, PAGE_KEYS), near_valid_desk_frames(desk))


def page_expected(value: Any, desk: Desk) -> bool:
    """Whether the page socket accepts a decoded frame (docs/desk.md); a `view` changes which
    ticket it follows."""
    if not isinstance(value, dict) or value.get("type") != "view":
        if isinstance(value, dict) and value.get("type") in ("subscribe", "unsubscribe"):
            return False  # the JSON clients' frames
        return expected(value, desk)[0]
    tab, filter_, ticket = value.get("tab"), value.get("filter"), value.get("ticket", None)
    if "tab" in value and not (isinstance(tab, str) and len(tab) <= 60):
        return False
    if "filter" in value and not (isinstance(filter_, str) and len(filter_) <= 40):
        return False
    if ticket is not None and not (is_json_integer(ticket) and ticket >= 1):
        return False
    desk.followed = {desk.mine.pk} if ticket == desk.mine.pk else set()
    return True


async def page_probe(ws: WebsocketCommunicator, number: int, forbidden: list[str]) -> list[str]:
    """What arrived before the answer to probe `number` (an unknown type, refused with an
    error piece naming it), each piece checked for `forbidden` text."""
    name = f"probe-{number}"
    await ws.send_json_to({"type": name})
    pieces: list[str] = []
    while True:
        output = await ws.receive_output(timeout=WAIT)
        assert output["type"] == "websocket.send", f"not a piece: {output}"
        text = output["text"]
        for secret in forbidden:
            assert secret not in text, f"another pool's ticket reached the page: {text[:300]}"
        if name in text and "unknown_type" in text:
            return pieces
        pieces.append(text)


@LIMITS
@FUZZ
@given(data=st.data())
async def test_any_frames_on_the_desk_page_get_one_rendered_error_each_and_nothing_of_other_pools(
    desk, data
):
    sequence = data.draw(
        st.lists(frames(near_valid_page_frames(desk), PAGE_KEYS), min_size=1, max_size=5),
        label="frames",
    )
    desk.followed = set()
    headers = [ORIGIN, desk.cookie]
    ws = WebsocketCommunicator(application, "/ws/desk/?format=html", headers=headers)
    connected, _ = await ws.connect()
    assert connected
    try:
        assert 'id="desk-presence"' in (await ws.receive_output(timeout=WAIT))["text"]
        for number, frame in enumerate(sequence):
            accepted = page_expected(decoded(frame), desk)
            await send(ws, frame)
            pieces = await page_probe(ws, number, desk.forbidden)
            errors = [code for piece in pieces for code in ERROR_PIECE.findall(piece)]
            assert len(errors) <= 1, f"more than one error for {frame!r}: {errors}"
            assert all(code in ERROR_CODES for code in errors), errors
            assert bool(errors) != accepted, f"{frame!r}: accepted={accepted}, errors={errors}"
        await secret_again(desk)
        await ws.send_json_to({"type": "presence", "presence": "online"})
        answer = await page_probe(ws, len(sequence), desk.forbidden)
        assert any('data-presence="online"' in piece for piece in answer), answer
    finally:
        await ws.disconnect()

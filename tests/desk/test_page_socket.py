"""The desk page's socket `/ws/desk/?format=html` through the real ASGI app: every event
arrives as HTML rendered for the user, after the same checks as the JSON socket's, with
customer text escaped, and nothing of a ticket the user may not see."""

import re
from contextlib import asynccontextmanager

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from apps.desk.assist import ticket_draft_create, ticket_draft_write
from apps.desk.services import ticket_note_add, ticket_reroute
from apps.pools.services import pool_membership_set, pool_upsert
from supportdesk.asgi import application
from tests.desk.test_consumers import (
    ORIGIN,
    customer_says,
    customer_socket,
    make_user,
    queued_ticket,
    session_cookie,
)
from tests.fakes import messages_api as api
from tests.fakes.fixtures import messages_api  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def technical_pool(db):
    return pool_upsert(slug="technical", name="Technical", description="Errors and bugs.")


@pytest.fixture
def billing_agent(billing_pool):
    agent = make_user("agent-billing")
    pool_membership_set(user=agent, pools=[billing_pool])
    return agent


@pytest.fixture
def supervisor(db):
    return make_user("lead", superuser=True)


@pytest.fixture
def billing_ticket(billing_pool):
    return queued_ticket(billing_pool, "Please send me a copy of my latest invoice")


PAYLOAD = '<img src=x onerror="window.__xss=1">'
ESCAPED = "&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;"


@asynccontextmanager
async def page_socket(user):
    headers = [ORIGIN, await database_sync_to_async(session_cookie)(user)]
    ws = WebsocketCommunicator(application, "/ws/desk/?format=html", headers=headers)
    connected, _ = await ws.connect()
    assert connected
    try:
        first = await ws.receive_output(timeout=5)
        assert 'id="desk-presence"' in first["text"]  # not the JSON welcome
        await until_quiet(ws)
        yield ws
    finally:
        await ws.disconnect()


async def until_quiet(ws, quiet=0.3) -> list[str]:
    texts = []
    while not await ws.receive_nothing(timeout=quiet):
        texts.append((await ws.receive_output(timeout=5))["text"])
    return texts


async def until(ws, needle: str, wait=5) -> list[str]:
    """Pieces up to and including the first that holds `needle`."""
    texts = []
    while True:
        texts.append((await ws.receive_output(timeout=wait))["text"])
        if needle in texts[-1]:
            return texts


async def view(ws, ticket=None, tab="mine", filter="open") -> str:
    # As htmx's ws extension sends it: with its HEADERS object, which is ignored.
    frame = {"type": "view", "tab": tab, "filter": filter, "ticket": ticket}
    await ws.send_json_to({**frame, "HEADERS": {"HX-Request": "true"}})
    return "".join(await until(ws, 'id="desk-tabs"'))


async def test_a_view_frame_renders_the_queue_and_the_ticket_with_the_customers_text_escaped(
    billing_agent, billing_ticket
):
    created, ticket = billing_ticket
    await database_sync_to_async(customer_says)(created, PAYLOAD)
    async with page_socket(billing_agent) as ws:
        html = await view(ws, ticket=ticket.pk, tab="pool:billing")
        html += "".join(await until_quiet(ws))
    assert 'hx-swap-oob="true"' in html
    assert f'data-ticket-id="{ticket.pk}"' in html  # its row in the queue
    assert f'id="t{ticket.pk}-messages"' in html
    assert "Please send me a copy of my latest invoice" in html
    assert ESCAPED in html
    assert PAYLOAD not in html


async def test_a_customer_message_is_appended_rendered_and_escaped(billing_agent, billing_ticket):
    created, ticket = billing_ticket
    async with page_socket(billing_agent) as ws:
        await view(ws, ticket=ticket.pk)
        await until_quiet(ws)
        await database_sync_to_async(customer_says)(created, PAYLOAD)
        pieces = await until(ws, f'id="t{ticket.pk}-messages" hx-swap-oob="beforeend"')
    appended = pieces[-1]
    assert ESCAPED in appended
    assert PAYLOAD not in appended
    assert 'data-sender="customer"' in appended
    assert appended.count('data-testid="desk-message"') == 1


async def test_a_note_and_typing_reach_the_page_following_the_ticket(billing_agent, billing_ticket):
    created, ticket = billing_ticket
    async with customer_socket(created) as customer, page_socket(billing_agent) as ws:
        await view(ws, ticket=ticket.pk)
        await until_quiet(ws)
        await database_sync_to_async(ticket_note_add)(
            ticket=ticket, actor=billing_agent, text=f"VIP {PAYLOAD}"
        )
        note = (await until(ws, f'id="t{ticket.pk}-notes" hx-swap-oob="beforeend"'))[-1]
        await customer.send_json_to({"type": "typing"})
        typing = (await until(ws, f'id="t{ticket.pk}-typing"'))[-1]
    assert f"VIP {ESCAPED}" in note
    assert "Customer is typing" in typing
    assert "hidden" not in typing


async def test_a_ticket_moved_away_shows_the_notice_and_none_of_what_follows(
    billing_agent, technical_pool, supervisor, billing_ticket
):
    created, ticket = billing_ticket
    async with page_socket(billing_agent) as ws:
        await view(ws, ticket=ticket.pk, tab="pool:billing")
        await until_quiet(ws)
        await database_sync_to_async(ticket_reroute)(
            ticket=ticket, actor=supervisor, pool=technical_pool, reason="A login problem"
        )
        lost = (await until(ws, 'data-testid="desk-access-lost"'))[-1]
        await database_sync_to_async(customer_says)(created, "here is my password hint")
        after = "".join(await until_quiet(ws, quiet=0.6))
        again = await view(ws, ticket=ticket.pk, tab="pool:billing")
    assert "no longer in your pools" in lost
    assert "invoice" not in lost
    assert "password hint" not in after
    assert f'id="t{ticket.pk}-messages"' not in after
    assert "no longer in your pools" in again
    assert "password hint" not in again


async def test_a_view_of_another_pools_ticket_renders_only_the_notice(
    billing_agent, technical_pool
):
    created, ticket = await database_sync_to_async(queued_ticket)(
        technical_pool, "The app crashes when I log in"
    )
    async with page_socket(billing_agent) as ws:
        html = await view(ws, ticket=ticket.pk, tab="all")
        await database_sync_to_async(customer_says)(created, "crash log: NullPointer at login")
        html += "".join(await until_quiet(ws, quiet=0.6))
    assert "no longer in your pools" in html
    assert "crashes" not in html
    assert "NullPointer" not in html
    assert f'data-ticket-id="{ticket.pk}" data-status' not in html  # not in the queue either


async def test_a_ready_draft_arrives_rendered_for_the_page(
    billing_agent,
    billing_ticket,
    settings,
    messages_api,  # noqa: F811
):
    settings.ANTHROPIC_API_KEY = "test-key"
    settings.ANTHROPIC_BASE_URL = messages_api.url
    messages_api.default = lambda body: api.text(f"Hi {{customer_name}}, {PAYLOAD}")
    _created, ticket = billing_ticket
    async with page_socket(billing_agent) as ws:
        await view(ws, ticket=ticket.pk)
        await until_quiet(ws)
        draft = await database_sync_to_async(ticket_draft_create)(
            ticket=ticket, actor=billing_agent
        )
        await database_sync_to_async(ticket_draft_write)(draft_id=draft.pk)
        ready = (await until(ws, 'data-status="ready"'))[-1]
    assert f'id="t{ticket.pk}-draft"' in ready
    assert f'data-draft-id="{draft.pk}"' in ready
    assert f"Hi Ada, {ESCAPED}" in ready


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "invalid_json"),
        ('{"type": "view", "ticket": "1"}', "invalid_frame"),
        ('{"type": "view", "tab": "PAD"}', "frame_too_large"),
        ('{"type": "view", "HEADERS": ' + "[" * 40 + "]" * 40 + "}", "invalid_frame"),
        ('{"type": "subscribe", "ticket": 1}', "unknown_type"),  # the JSON clients' frame
        ('{"type": "presence", "presence": "offline"}', "invalid_frame"),
    ],
)
async def test_a_bad_frame_gets_a_rendered_error_and_the_socket_keeps_serving(
    billing_agent, frame, code
):
    async with page_socket(billing_agent) as ws:
        await ws.send_to(text_data=frame.replace("PAD", "x" * 70_000))
        error = (await ws.receive_output(timeout=5))["text"]
        await ws.send_json_to({"type": "presence", "presence": "away"})
        answer = (await ws.receive_output(timeout=5))["text"]
    assert re.search(rf'id="desk-error"[^>]*data-code="{code}"', error), error
    assert 'data-presence="away"' in answer


async def test_the_page_socket_is_refused_to_non_staff_like_the_json_one(db):
    customer = await database_sync_to_async(make_user)("c", staff=False)
    headers = [ORIGIN, await database_sync_to_async(session_cookie)(customer)]
    ws = WebsocketCommunicator(application, "/ws/desk/?format=html", headers=headers)
    await ws.connect()
    try:
        assert (await ws.receive_json_from())["code"] == "auth_failed"
        assert await ws.receive_output() == {"type": "websocket.close", "code": 4401}
    finally:
        await ws.disconnect()


async def test_agent_typing_from_the_page_reaches_the_customer(billing_agent, billing_ticket):
    created, ticket = billing_ticket
    async with customer_socket(created) as customer, page_socket(billing_agent) as ws:
        await view(ws, ticket=ticket.pk)
        await ws.send_json_to({"type": "typing", "ticket": ticket.pk})
        frames: list[dict[str, object]] = []
        while not frames or frames[-1]["type"] != "typing":
            frames.append(await customer.receive_json_from(timeout=5))
    assert frames[-1] == {"type": "typing", "sender": "agent"}

"""Who may do what (issue 12): every REST endpoint and staff page, for every role, one table.

Roles: anonymous; customer A (who has a billing ticket, a file and a ticket in review) and
customer B, each with their conversation's token; an agent of pool X (billing, A's pool) and
of pool Y (technical); a reviewer; a manager; an admin. Each cell is the HTTP status that role
gets, run in a savepoint that is rolled back, so cells do not see each other's writes. The
same table is rendered into docs/security.md; a test keeps the two equal. Every route under
/api/v1/ must have a row: a new endpoint without one fails here.
"""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.chat.models import Message
from apps.chat.services import conversation_create
from apps.core.ratelimit import rate_limit_reset
from apps.flows.demo import demo_seed
from apps.flows.messages import attachment_post, message_post
from apps.flows.routing import ticket_route
from apps.orchestrator.models import ModelVersion
from apps.pools.services import ticket_queue
from apps.review.models import ReviewItem
from apps.tickets.models import Ticket
from tests.fakes.files import png_bytes

ROOT = Path(__file__).resolve().parents[1]
ROLES = (
    "anonymous",
    "customer_a",
    "customer_b",
    "agent_x",
    "agent_y",
    "reviewer",
    "manager",
    "admin",
)
STAFF = ("agent_x", "agent_y", "reviewer", "manager", "admin")


def cells(default: int, *groups: dict[str, int], **overrides: int) -> dict[str, int]:
    """Every role's status: `default`, then `groups` and `overrides` in order."""
    merged: dict[str, int] = {}
    for group in groups:
        merged |= group
    merged |= overrides
    return {role: merged.get(role, default) for role in ROLES}


def staff_all(status: int) -> dict[str, int]:
    return dict.fromkeys(STAFF, status)


def customer_endpoint(ok: int) -> dict[str, int]:
    """A's conversation, reached with a conversation token: only A's token opens it; B's
    looks like a conversation that does not exist; staff credentials are not a token."""
    return cells(401, customer_a=ok, customer_b=404)


def staff_ticket(ok: int, *, y: int = 404) -> dict[str, int]:
    """One of A's billing ticket's endpoints: its pool's agents and supervisors (reviewers,
    managers, admins hold `pools.supervise`); another pool's agent cannot tell it exists."""
    return cells(401, agent_x=ok, agent_y=y, reviewer=ok, manager=ok, admin=ok)


@dataclass(frozen=True)
class Row:
    action: str  # what a person would call it
    method: str
    path: str  # with {conversation}, {ticket}, {attachment}, {review}
    expected: dict[str, int]
    body: Callable[["World"], Any] | None = None
    multipart: bool = False


def upload(_: "World") -> dict[str, Any]:
    return {"file": SimpleUploadedFile("p.png", png_bytes(), content_type="image/png")}


MATRIX: list[Row] = [
    # --- the customer's widget ------------------------------------------------------------
    Row("open a conversation", "post", "/api/v1/conversations/", cells(201), lambda w: {}),
    Row(
        "read a conversation",
        "get",
        "/api/v1/conversations/{conversation}/",
        customer_endpoint(200),
    ),
    Row(
        "send a message",
        "post",
        "/api/v1/conversations/{conversation}/messages/",
        customer_endpoint(201),
        lambda w: {"text": "one more thing"},
    ),
    Row(
        "read events after a seq",
        "get",
        "/api/v1/conversations/{conversation}/events/?after=0",
        customer_endpoint(200),
    ),
    Row(
        "ask for a person",
        "post",
        "/api/v1/conversations/{conversation}/handoff/",
        customer_endpoint(200),
    ),
    Row(
        "send a file",
        "post",
        "/api/v1/conversations/{conversation}/attachments/",
        customer_endpoint(201),
        upload,
        multipart=True,
    ),
    Row(
        "download a file",
        "get",
        "/api/v1/attachments/{attachment}/",
        # 404 to everyone who may not read it, the anonymous too: its existence is not told.
        cells(404, customer_a=200, agent_x=200, reviewer=200, manager=200, admin=200),
    ),
    # --- the desk ---------------------------------------------------------------------------
    Row("desk overview", "get", "/api/v1/desk/", cells(401, **staff_all(200))),
    Row(
        "choose presence",
        "post",
        "/api/v1/desk/presence/",
        # Staff may, but only with a desk open: no socket here, so 409 for every one of them.
        cells(401, **staff_all(409)),
        lambda w: {"presence": "away"},
    ),
    Row("list tickets", "get", "/api/v1/tickets/", cells(401, **staff_all(200))),
    Row("read a ticket", "get", "/api/v1/tickets/{ticket}/", staff_ticket(200)),
    Row(
        "reply to the customer",
        "post",
        "/api/v1/tickets/{ticket}/reply/",
        staff_ticket(201),
        lambda w: {"text": "Here is your invoice."},
    ),
    Row(
        "add an internal note",
        "post",
        "/api/v1/tickets/{ticket}/notes/",
        staff_ticket(201),
        lambda w: {"text": "checked the ledger"},
    ),
    Row("claim", "post", "/api/v1/tickets/{ticket}/claim/", staff_ticket(200)),
    # Nobody holds it: giving it back is a conflict even for those who may act on it.
    Row("unassign", "post", "/api/v1/tickets/{ticket}/unassign/", staff_ticket(409)),
    Row("resolve", "post", "/api/v1/tickets/{ticket}/resolve/", staff_ticket(200)),
    Row("reopen", "post", "/api/v1/tickets/{ticket}/reopen/", staff_ticket(409)),
    Row(
        "move to another pool (wrong pool)",
        "post",
        "/api/v1/tickets/{ticket}/reroute/",
        staff_ticket(200),
        lambda w: {"pool": "technical", "reason": "a login problem, not billing"},
    ),
    Row(
        "canned replies for a ticket",
        "get",
        "/api/v1/tickets/{ticket}/canned-replies/",
        staff_ticket(200),
    ),
    Row(
        "send a file on a ticket",
        "post",
        "/api/v1/tickets/{ticket}/attachments/",
        staff_ticket(201),
        upload,
        multipart=True,
    ),
    # No API key in tests: drafts are off, which those who may ask are told (409).
    Row("ask for an AI draft", "post", "/api/v1/tickets/{ticket}/draft/", staff_ticket(409)),
    Row(
        "route a text (dry run)",
        "post",
        "/api/v1/route/",
        cells(401, **staff_all(200)),
        lambda w: {"text": "I was charged twice"},
    ),
    # --- the review queue -------------------------------------------------------------------
    Row(
        "list the review queue",
        "get",
        "/api/v1/review/",
        # Managers read the queue in the admin (read-only) and its figures in the reports.
        cells(401, agent_x=403, agent_y=403, reviewer=200, manager=403, admin=200),
    ),
    Row(
        "resolve a review item",
        "post",
        "/api/v1/review/{review}/resolve/",
        cells(401, agent_x=403, agent_y=403, reviewer=200, manager=403, admin=200),
        lambda w: {"pool": "billing"},
    ),
    # --- reports ----------------------------------------------------------------------------
    *[
        Row(action, "get", path, cells(401, staff_all(403), manager=200, admin=200))
        for action, path in [
            ("report summary", "/api/v1/reports/summary/"),
            ("export tickets (CSV)", "/api/v1/reports/tickets/export/"),
            ("decision receipts", "/api/v1/decisions/"),
            ("export decisions (CSV)", "/api/v1/decisions/export/"),
        ]
    ],
    # --- staff pages (a login session; the anonymous are sent to the login page) -------------
    Row("the desk page", "get", "/desk/", cells(302, **staff_all(200))),
    Row(
        "the reports page",
        "get",
        "/reports/",
        cells(302, staff_all(403), manager=200, admin=200),
    ),
    Row("the admin", "get", "/admin/", cells(302, **staff_all(200))),
]


@dataclass
class World:
    conversation: str
    ticket: int
    attachment: int
    review: int
    tokens: dict[str, str]  # customer role -> conversation token
    staff: dict[str, Any]  # staff role -> user


@pytest.fixture
def world(db) -> World:
    return build_world()


def build_world() -> World:
    """Roles and objects of the matrix, in the test's database."""
    seeded = demo_seed()  # pools, the staff groups and their permissions, the demo accounts
    assert seeded.pools
    ModelVersion.objects.update(active=False)  # routing without a model: doubtful → review
    users = get_user_model().objects
    staff = {
        "agent_x": users.get(username="agent-billing"),
        "agent_y": users.get(username="agent-technical"),
        "reviewer": users.get(username="reviewer"),
        "manager": users.get(username="manager"),
        "admin": users.get(username="admin"),
    }
    a, b = conversation_create(name="Ada"), conversation_create(name="Bob")
    message_post(
        conversation=a.conversation, text="Where is my invoice?", sender=Message.Sender.CUSTOMER
    )
    ticket = ticket_queue(
        ticket=Ticket.objects.get(conversation=a.conversation),
        pool=seeded_pool("billing"),
    )
    posted = attachment_post(
        conversation=a.conversation,
        upload=SimpleUploadedFile("invoice.png", png_bytes(), content_type="image/png"),
        sender=Message.Sender.CUSTOMER,
    )
    c = conversation_create(name="Cy")
    message_post(conversation=c.conversation, text="hmm", sender=Message.Sender.CUSTOMER)
    ticket_route(ticket=Ticket.objects.get(conversation=c.conversation))
    review = ReviewItem.objects.get(ticket__conversation=c.conversation)
    return World(
        conversation=str(a.conversation.id),
        ticket=ticket.pk,
        attachment=posted.message.attachments.get().pk,
        review=review.pk,
        tokens={"customer_a": a.token, "customer_b": b.token},
        staff=staff,
    )


def seeded_pool(slug: str) -> Any:
    from apps.pools.models import Pool

    return Pool.objects.get(slug=slug)


def client_for(world: World, role: str, *, page: bool) -> APIClient:
    client = APIClient()
    if role in world.tokens:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.tokens[role]}")
    elif role in world.staff:
        user = world.staff[role]
        if page:
            client.force_login(user)  # the pages run on the login session
        else:
            key = Token.objects.get_or_create(user=user)[0].key
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    rate_limit_reset()
    yield
    rate_limit_reset()


def test_every_endpoint_answers_every_role_as_the_table_says(world, settings):
    settings.CHAT_RATE_LIMIT = "1000/minute"
    found: list[str] = []
    for row in MATRIX:
        path = row.path.format(**vars(world))
        for role in ROLES:
            client = client_for(world, role, page=not path.startswith("/api/"))
            body = row.body(world) if row.body else None
            with transaction.atomic():
                call = getattr(client, row.method)
                kwargs: dict[str, Any] = {}
                if body is not None:
                    kwargs = {"data": body} if row.multipart else {"data": body, "format": "json"}
                status = call(path, **kwargs).status_code
                transaction.set_rollback(True)
            if status != row.expected[role]:
                found.append(f"{row.action} as {role}: {status}, expected {row.expected[role]}")
    assert found == []


# --- the sockets ------------------------------------------------------------------------------

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
# What each role gets: on /ws/chat/, saying hello to A's conversation with its own token (the
# anonymous with none of theirs); on /ws/desk/, opening it with its login session; then
# subscribing to A's billing ticket.
SOCKET_MATRIX: dict[str, dict[str, str]] = {
    "hello to A's conversation on /ws/chat/": {
        **dict.fromkeys(ROLES, "auth_failed, closed 4401"),
        "customer_a": "welcome",
    },
    "open /ws/desk/": {
        **dict.fromkeys(ROLES, "auth_failed, closed 4401"),
        **dict.fromkeys(STAFF, "welcome"),
    },
    "follow A's ticket on /ws/desk/": {
        **dict.fromkeys(ROLES, "(no desk)"),
        **dict.fromkeys(STAFF, "subscribed"),
        "agent_y": "not_found",
    },
    "view A's ticket on the desk page's /ws/desk/?format=html": {
        **dict.fromkeys(ROLES, "auth_failed, closed 4401"),
        **dict.fromkeys(STAFF, "rendered"),
        "agent_y": "notice only",
    },
}


async def _chat_hello(world: World, role: str) -> str:
    from channels.testing import WebsocketCommunicator

    from supportdesk.asgi import application

    ws = WebsocketCommunicator(application, "/ws/chat/", headers=[ORIGIN])
    await ws.connect()
    try:
        token = world.tokens.get(role, "not-a-token")
        await ws.send_json_to({"type": "hello", "conversation": world.conversation, "token": token})
        frame = await ws.receive_json_from()
        if frame["type"] == "welcome":
            return "welcome"
        close = await ws.receive_output()
        return f"{frame['code']}, closed {close['code']}"
    finally:
        await ws.disconnect()


async def _desk(world: World, role: str) -> tuple[str, str]:
    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.conf import settings as django_settings
    from django.test import Client

    from supportdesk.asgi import application

    headers = [ORIGIN]
    if role in world.staff:

        def cookie() -> tuple[bytes, bytes]:
            client = Client()
            client.force_login(world.staff[role])
            value = client.cookies[django_settings.SESSION_COOKIE_NAME].value
            return (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={value}".encode())

        headers.append(await database_sync_to_async(cookie)())
    ws = WebsocketCommunicator(application, "/ws/desk/", headers=headers)
    await ws.connect()
    try:
        frame = await ws.receive_json_from()
        if frame["type"] != "welcome":
            close = await ws.receive_output()
            return f"{frame['code']}, closed {close['code']}", "(no desk)"
        await ws.send_json_to({"type": "subscribe", "ticket": world.ticket})
        while True:
            answer = await ws.receive_json_from(timeout=5)
            if answer["type"] == "subscribed":
                return "welcome", "subscribed"
            if answer["type"] == "error":
                return "welcome", answer["code"]
    finally:
        await ws.disconnect()


async def _desk_page(world: World, role: str) -> str:
    """What the desk page's socket renders of A's ticket for `role` (a `view` frame)."""
    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.conf import settings as django_settings
    from django.test import Client

    from supportdesk.asgi import application

    headers = [ORIGIN]
    if role in world.staff:

        def cookie() -> tuple[bytes, bytes]:
            client = Client()
            client.force_login(world.staff[role])
            value = client.cookies[django_settings.SESSION_COOKIE_NAME].value
            return (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={value}".encode())

        headers.append(await database_sync_to_async(cookie)())
    ws = WebsocketCommunicator(application, "/ws/desk/?format=html", headers=headers)
    await ws.connect()
    try:
        first = (await ws.receive_output(timeout=5))["text"]
        if first.startswith("{"):  # refused before it knew it was a page's: a JSON error
            close = await ws.receive_output()
            return f"{json.loads(first)['code']}, closed {close['code']}"
        await ws.send_json_to({"type": "view", "tab": "all", "ticket": world.ticket})
        pieces = ""
        while 'id="desk-tabs"' not in pieces:
            pieces += (await ws.receive_output(timeout=5))["text"]
        if f'id="t{world.ticket}-messages"' in pieces:
            return "rendered"
        return "notice only" if "no longer in your pools" in pieces else pieces[:200]
    finally:
        await ws.disconnect()


@pytest.fixture
def socket_world(transactional_db) -> World:
    return build_world()


@pytest.mark.django_db(transaction=True)
async def test_every_socket_action_answers_every_role_as_the_table_says(socket_world):
    found: list[str] = []
    actions = list(SOCKET_MATRIX)
    for role in ROLES:
        hello = await _chat_hello(socket_world, role)
        opened, followed = await _desk(socket_world, role)
        page = await _desk_page(socket_world, role)
        for action, got in zip(actions, (hello, opened, followed, page), strict=True):
            if got != SOCKET_MATRIX[action][role]:
                found.append(f"{action} as {role}: {got}, expected {SOCKET_MATRIX[action][role]}")
    assert found == []


def _api_routes() -> set[str]:
    routes: set[str] = set()

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif route.startswith("api/v1/"):
                routes.add("/" + route)

    walk(get_resolver().url_patterns, "")
    return routes


def _route_of(path: str) -> str:
    """The URL pattern a matrix path is written against ({ticket} → <int:ticket_id>, ...)."""
    return (
        path.split("?")[0]
        .replace("{conversation}", "<uuid:conversation_id>")
        .replace("{ticket}", "<int:ticket_id>")
        .replace("{attachment}", "<int:attachment_id>")
        .replace("{review}", "<int:item_id>")
    )


def test_every_api_route_has_a_row_in_the_table():
    covered = {_route_of(row.path) for row in MATRIX}
    assert _api_routes() - covered == set()


def matrix_markdown() -> str:
    """The tables as docs/security.md shows them."""
    head = "| action | request | " + " | ".join(ROLES) + " |"
    rule = "|" + "---|" * (len(ROLES) + 2)
    lines = [head.replace("_", " "), rule]
    for row in MATRIX:
        request = f"`{row.method.upper()} {row.path}`"
        codes = " | ".join(str(row.expected[role]) for role in ROLES)
        lines.append(f"| {row.action} | {request} | {codes} |")
    lines += ["", ("| socket action | " + " | ".join(ROLES) + " |").replace("_", " ")]
    lines.append("|" + "---|" * (len(ROLES) + 1))
    for action, expected in SOCKET_MATRIX.items():
        lines.append(f"| {action} | " + " | ".join(expected[role] for role in ROLES) + " |")
    return "\n".join(lines)


def test_docs_security_shows_this_very_table():
    docs = (ROOT / "docs" / "security.md").read_text()
    assert matrix_markdown() in docs, (
        "regenerate the table: python -m tests.test_authorization_matrix"
    )


if __name__ == "__main__":
    print(matrix_markdown())

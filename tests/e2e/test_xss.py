"""Stored and reflected XSS in real Chromium: a corpus of payloads goes in wherever people or
admins write text (customer messages and names, attachment names, agent names, replies and
notes, reroute reasons, pool names and descriptions, rule names and patterns, canned replies,
report filters), and every page that shows it is opened: the widget, the desk as an agent of
the pool and as a supervisor, the review queue, the reports and the admin.

Each payload is unique and, if it ever ran, would set `window.__xss`, open a dialog or leave an
element with a `data-xss` attribute, an inline event handler or a `javascript:` URL in the
DOM (shadow roots included). A page passes when the payloads are there as text and none of
that happened. Pages are opened with the Content-Security-Policy bypassed, so what is tested
is the escaping itself; the policy is a second wall (tests/e2e/test_csp.py).
"""

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, StorageState, expect

from tests.fakes.files import pdf_bytes, png_bytes
from tests.servers import AsgiServer, embedded_env, manage, migrated_sqlite

pytestmark = pytest.mark.browser

# Each template makes one payload from a number `k`; every payload is unique through `k`.
TEMPLATES: list[Callable[[int], str]] = [
    lambda k: f"<script>window.__xss={k}</script>",
    lambda k: f'<img src=x data-xss={k} onerror="window.__xss={k}">',
    lambda k: f"<svg data-xss={k} onload=window.__xss={k}>",
    lambda k: f'<a data-xss={k} href="javascript:window.__xss={k}">link {k}</a>',
    lambda k: f"javascript:window.__xss={k}//{k}",
    lambda k: f'"><img src=x data-xss={k} onerror=window.__xss={k}>',
    lambda k: f"'><img src=x data-xss={k} onerror=window.__xss={k}>",
    lambda k: f"`${{window.__xss={k}}}` ${{alert({k})}} template {k}",
    lambda k: f"&lt;img src=x data-xss={k} onerror=window.__xss={k}&gt;",
    lambda k: f"&#60;script&#62;window.__xss={k}&#60;/script&#62;",
    lambda k: f"</script><script>window.__xss={k}</script>",
    lambda k: f'<div data-xss={k} style="width:expression(window.__xss={k})">css {k}</div>',
    lambda k: f"<style>@import 'javascript:window.__xss={k}';</style>style {k}",
    lambda k: f"[click {k}](javascript:window.__xss={k})",
    lambda k: f'![pic {k}](x" onerror="window.__xss={k})',
    lambda k: f"\u200f<img src=x data-xss={k} onerror=window.__xss={k}>\u200e rtl {k}",
    lambda k: f'<iframe data-xss={k} src="javascript:window.__xss={k}"></iframe>',
    lambda k: f"<details data-xss={k} open ontoggle=window.__xss={k}>",
    lambda k: f"{{{{constructor.constructor('window.__xss={k}')()}}}}",
    lambda k: (
        f"<math><mtext><table><mglyph><style><img src=x data-xss={k} onerror=window.__xss={k}>"
    ),
    lambda k: f"<input data-xss={k} autofocus onfocus=window.__xss={k}>",
    lambda k: f"\"-alert({k})-\" '-alert({k})-'",
    lambda k: f"\\u003cimg src=x data-xss={k} onerror=window.__xss={k}\\u003e",
    lambda k: f"%3Cimg%20src%3Dx%20data-xss%3D{k}%20onerror%3Dwindow.__xss%3D{k}%3E",
    lambda k: f'<object data-xss={k} data="javascript:window.__xss={k}"></object>',
    lambda k: f"</textarea></title><img src=x data-xss={k} onerror=window.__xss={k}>",
    lambda k: f"<\uff53cript>window.__xss={k}</\uff53cript> fullwidth {k}",
]


def payload(template: int, k: int) -> str:
    return TEMPLATES[template](k)


# Customer messages: the whole corpus, ids 1...; the first one carries the rule's keyword.
KEYWORD = "xsscorpus"
MESSAGES = [payload(i, 1 + i) for i in range(len(TEMPLATES))]
# Customers' names, one conversation each (routed by the rule), ids 100...
NAMES = [payload(i, 100 + i) for i in (1, 2, 5, 6, 25)]
NAME_FIRST_MESSAGES = [payload(i, 120 + i) for i in (0, 3, 10, 11, 16)]
MAIN_NAME = payload(7, 150)
REVIEW_NAME, REVIEW_TEXT = payload(2, 160), payload(1, 161) + " something odd with my stuff"
# Files: names without "/" (the directory part of a name is dropped by design) or '"' (sent
# as %22, as browsers do in multipart file names).
ATTACHMENTS = [
    ("'><img src=x data-xss=401 onerror=window.__xss=401>.png", "image/png", png_bytes(4, 3)),
    ("<svg data-xss=402 onload=window.__xss=402>.png", "image/png", png_bytes(3, 4)),
    ("><iframe data-xss=403 src=javascript:window.__xss=403>.pdf", "application/pdf", None),
]
# Staff and admins.
AGENT_NAME = payload(1, 501)
POOL_NAME = payload(2, 502)
POOL_DESCRIPTION = payload(25, 503)
RULE_NAME = payload(5, 504)
RULE_PATTERN = KEYWORD + "|" + payload(1, 505)
CANNED_TITLE = payload(6, 506)
CANNED_TEXT = payload(25, 507) + " Hi {customer_name}"
AGENT_REPLY = payload(1, 508)
DESK_REPLY = payload(2, 509)
NOTE = payload(0, 510)
DESK_NOTE = payload(5, 511)
REROUTE_REASON = payload(6, 512)
REFLECTED = payload(5, 513)

CORPUS = [
    *MESSAGES,
    *NAMES,
    *NAME_FIRST_MESSAGES,
    MAIN_NAME,
    REVIEW_NAME,
    REVIEW_TEXT,
    *(name for name, _, _ in ATTACHMENTS),
    AGENT_NAME,
    POOL_NAME,
    POOL_DESCRIPTION,
    RULE_NAME,
    RULE_PATTERN,
    CANNED_TITLE,
    CANNED_TEXT,
    AGENT_REPLY,
    DESK_REPLY,
    NOTE,
    DESK_NOTE,
    REROUTE_REASON,
    REFLECTED,
]
assert len(set(CORPUS)) == len(CORPUS)

# In a manage.py shell against the live server's database (the data comes in XSS_DATA).
SETUP = """
import json, os
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from apps.orchestrator.services import rule_create
from apps.desk.models import CannedReply
from apps.pools.models import Pool
from apps.pools.services import pool_membership_set, pool_upsert

data = json.loads(os.environ["XSS_DATA"])
pool = pool_upsert(slug="xss", name=data["pool_name"], description=data["pool_description"])
users = get_user_model().objects
agent = users.get(username="agent-billing")
agent.first_name = data["agent_name"]
agent.save(update_fields=["first_name"])
pool_membership_set(user=agent, pools=Pool.objects.filter(slug__in=["billing", "xss"]), capacity=20)
rule_create(name=data["rule_name"], kind="regex", pattern=data["rule_pattern"], pool=pool,
            priority=1000)
CannedReply.objects.create(pool=pool, title=data["canned_title"], text=data["canned_text"])
tokens = {name: Token.objects.get_or_create(user=users.get(username=name))[0].key
          for name in ("agent-billing", "manager")}
print(json.dumps({"tokens": tokens}))
"""

# Afterwards: the widget customer's name, and the review conversation in the review queue
# whatever the local model made of it.
AFTER = """
import json, os
from apps.chat.models import Conversation
from apps.review.services import review_item_open
from apps.tickets.services import ticket_status_set
from apps.tickets.models import Ticket

data = json.loads(os.environ["XSS_DATA"])
customer = Conversation.objects.get(pk=data["main"]).customer
customer.name = data["main_name"]
customer.save(update_fields=["name"])
ticket = Ticket.objects.get(conversation_id=data["review"])
if ticket.status != Ticket.Status.IN_REVIEW:
    ticket_status_set(ticket=ticket, status=Ticket.Status.IN_REVIEW)
    review_item_open(ticket=ticket, reason="low_confidence")
print(json.dumps({"review_ticket": ticket.pk}))
"""


@dataclass
class World:
    """The live server after every payload went in, and what the tests need to find it."""

    server: AsgiServer
    customer_state: StorageState
    main_ticket: int = 0
    name_tickets: list[int] = field(default_factory=list)
    rerouted_ticket: int = 0


def shell(env: dict[str, str], code: str, data: dict[str, Any]) -> dict[str, Any]:
    printed = manage("shell", "-c", code, env={**env, "XSS_DATA": json.dumps(data)})
    answer: dict[str, Any] = json.loads(printed.strip().splitlines()[-1])
    return answer


def api(
    server: AsgiServer,
    path: str,
    *,
    data: dict[str, Any] | None = None,
    auth: str | None = None,
) -> Any:
    request = urllib.request.Request(
        server.url + path,
        data=json.dumps(data).encode() if data is not None else None,
        headers={"Content-Type": "application/json", **({"Authorization": auth} if auth else {})},
        method="POST" if data is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.loads(response.read())


def by_testid(page: Page, testid: str):
    return page.locator(f'[data-testid="{testid}"]')


def ticket_of(server: AsgiServer, conversation: str, token: str) -> int:
    auth = f"Token {token}"
    for _ in range(100):
        results = api(server, f"/api/v1/tickets/?conversation={conversation}", auth=auth)
        if results["results"] and results["results"][0]["status"] != "routing":
            return int(results["results"][0]["id"])
        time.sleep(0.1)
    raise AssertionError(f"conversation {conversation} was not routed")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[World]:
    """A live server of its own (the payloads stay out of the other browser tests' pages)
    with every payload stored through the paths people use: the widget, REST, the shell."""
    workdir = tmp_path_factory.mktemp("live-xss")
    env = embedded_env(workdir, MEDIA_ROOT=str(workdir / "media"), CHAT_RATE_LIMIT="1000/minute")
    migrated_sqlite(env, seed=True)
    server = AsgiServer(env, log=workdir / "server.log")
    env["CHAT_ALLOWED_ORIGINS"] = server.url
    server.start()
    try:
        tokens = shell(
            env,
            SETUP,
            {
                "pool_name": POOL_NAME,
                "pool_description": POOL_DESCRIPTION,
                "agent_name": AGENT_NAME,
                "rule_name": RULE_NAME,
                "rule_pattern": RULE_PATTERN,
                "canned_title": CANNED_TITLE,
                "canned_text": CANNED_TEXT,
            },
        )["tokens"]
        agent, manager = f"Token {tokens['agent-billing']}", f"Token {tokens['manager']}"

        # The widget's customer types the first payload; the rest arrive over REST.
        context = browser.new_context()
        customer = context.new_page()
        customer.goto(server.url + "/")
        by_testid(customer, "sd-launcher").click()
        by_testid(customer, "sd-input").fill(f"{KEYWORD} {MESSAGES[0]}")
        by_testid(customer, "sd-send").click()
        expect(by_testid(customer, "sd-status")).to_contain_text("team")
        stored = customer.evaluate(
            "() => Object.entries(localStorage)"
            ".find(([key]) => key.startsWith('supportdesk:conversation:'))[1]"
        )
        conversation = json.loads(stored)
        main, bearer = conversation["id"], f"Bearer {conversation['token']}"
        for text in MESSAGES[1:]:
            api(server, f"/api/v1/conversations/{main}/messages/", data={"text": text}, auth=bearer)
        for name, mime, content in ATTACHMENTS:
            answer = customer.request.post(
                f"{server.url}/api/v1/conversations/{main}/attachments/",
                headers={"Authorization": bearer},
                multipart={
                    "file": {"name": name, "mimeType": mime, "buffer": content or pdf_bytes()}
                },
            )
            assert answer.status == 201, answer.text()
        state = context.storage_state()
        context.close()

        world = World(server=server, customer_state=state)
        world.main_ticket = ticket_of(server, main, tokens["agent-billing"])
        api(
            server,
            f"/api/v1/tickets/{world.main_ticket}/reply/",
            data={"text": AGENT_REPLY},
            auth=agent,
        )
        api(server, f"/api/v1/tickets/{world.main_ticket}/notes/", data={"text": NOTE}, auth=agent)

        for name, text in zip(NAMES, NAME_FIRST_MESSAGES, strict=True):
            created = api(server, "/api/v1/conversations/", data={"name": name})
            api(
                server,
                f"/api/v1/conversations/{created['id']}/messages/",
                data={"text": f"{text} {KEYWORD}"},
                auth=f"Bearer {created['token']}",
            )
            world.name_tickets.append(ticket_of(server, created["id"], tokens["manager"]))
        world.rerouted_ticket = world.name_tickets[-1]
        api(
            server,
            f"/api/v1/tickets/{world.rerouted_ticket}/reroute/",
            data={"pool": "billing", "reason": REROUTE_REASON},
            auth=manager,
        )

        review = api(server, "/api/v1/conversations/", data={"name": REVIEW_NAME})
        api(
            server,
            f"/api/v1/conversations/{review['id']}/messages/",
            data={"text": REVIEW_TEXT},
            auth=f"Bearer {review['token']}",
        )
        ticket_of(server, review["id"], tokens["manager"])
        shell(env, AFTER, {"main": main, "main_name": MAIN_NAME, "review": review["id"]})
        yield world
    finally:
        server.stop()


# --- what a page must (not) show -----------------------------------------------------------

# Text of the document and of every open shadow root (the widget lives in one).
ALL_TEXT = """() => {
  const parts = [];
  const visit = (root) => {
    parts.push(root === document ? document.documentElement.textContent : root.textContent);
    root.querySelectorAll("*").forEach((el) => el.shadowRoot && visit(el.shadowRoot));
  };
  visit(document);
  return parts.join("\\n");
}"""

# What a payload leaves behind if the page parsed it as HTML instead of showing it as text.
INJECTED = """() => {
  const found = [];
  const urlAttributes = ["href", "src", "action", "formaction", "data", "xlink:href"];
  const visit = (root) => {
    root.querySelectorAll("*").forEach((el) => {
      const tag = el.tagName.toLowerCase();
      if (el.hasAttribute("data-xss")) found.push("element " + el.outerHTML.slice(0, 160));
      for (const attr of el.attributes) {
        const name = attr.name.toLowerCase();
        if (name.startsWith("on") && attr.value.includes("__xss"))
          found.push("handler " + tag + " " + name + "=" + attr.value.slice(0, 80));
        if (urlAttributes.includes(name) && /^\\s*javascript:/i.test(attr.value))
          found.push("javascript: URL " + tag + " " + name + "=" + attr.value.slice(0, 80));
      }
      if (tag === "script" && !/json/.test(el.type) && el.textContent.includes("__xss"))
        found.push("script " + el.textContent.slice(0, 80));
      if (el.shadowRoot) visit(el.shadowRoot);
    });
  };
  visit(document);
  return found;
}"""


class Guard:
    """Watches one page: dialogs opened, and on `check`, scripts run and elements injected."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)

    def findings(self) -> list[str]:
        """Every trace of a payload that ran or became markup, on the page as it is now."""
        found: list[str] = [f"dialog {dialog}" for dialog in self.dialogs]
        if self.page.is_closed():
            return found
        ran = self.page.evaluate("() => window.__xss")
        if ran is not None:
            found.append(f"payload {ran} ran (window.__xss = {ran!r})")
        return found + list(self.page.evaluate(INJECTED))

    def check(self, *, shown: list[str], where: str) -> None:
        """Nothing of any payload ran or became markup, and `shown` are on the page as text."""
        found = self.findings()
        assert not found, f"XSS on {where} ({self.page.url}): {found}"
        text = self.page.evaluate(ALL_TEXT)
        missing = [item for item in shown if item not in text]
        assert not missing, f"{where}: not shown as text: {missing}"


@pytest.fixture
def guards() -> Iterator[list[Guard]]:
    """The guards of the test's pages, scanned once more at its end: a test that failed on
    what it expected to see also says whether a payload ran or became markup."""
    watched: list[Guard] = []
    yield watched
    found = [finding for guard in watched for finding in guard.findings()]
    assert not found, f"XSS: {found}"


@pytest.fixture
def signed_in(world: World, staff_page, guards: list[Guard]) -> Callable[[str], tuple[Page, Guard]]:
    """A staff user's page, CSP bypassed, watched from before its first page of data."""

    def open_as(username: str) -> tuple[Page, Guard]:
        page = staff_page(
            world.server, username, next_path="/admin/password_change/", bypass_csp=True
        )
        guards.append(Guard(page))
        return page, guards[-1]

    return open_as


@pytest.fixture
def customer(world: World, browser: Browser) -> Iterator[tuple[Page, Guard]]:
    """The widget's customer in their own browser (their conversation in localStorage)."""
    context = browser.new_context(storage_state=world.customer_state, bypass_csp=True)
    guard = Guard(context.new_page())
    yield guard.page, guard
    found = guard.findings()  # before the page goes (`guards` looks again, at dialogs only)
    context.close()
    assert not found, f"XSS: {found}"


def shot(page: Page, output_path: str, name: str) -> None:
    Path(output_path).mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(Path(output_path) / f"xss-{name}.png"), full_page=True)


# --- the surfaces ----------------------------------------------------------------------------


def test_the_widget_shows_every_payload_as_text(world: World, customer, output_path: str):
    page, guard = customer
    page.goto(world.server.url + "/")
    by_testid(page, "sd-launcher").click()
    messages = by_testid(page, "sd-message")
    expect(messages.filter(has_text=AGENT_REPLY)).to_have_attribute("data-sender", "agent")
    expect(messages.filter(has_text=MESSAGES[-1])).to_have_count(1)
    # The agent's name and the pool's name, in the status line.
    expect(by_testid(page, "sd-status")).to_have_text(
        f"{AGENT_NAME} from our {POOL_NAME} team is handling your request."
    )
    # Images carry the file's name as alt text; the PDF as its link text.
    attachments = by_testid(page, "sd-attachment")
    expect(attachments).to_have_count(len(ATTACHMENTS))
    expect(attachments.nth(0)).to_have_attribute("alt", ATTACHMENTS[0][0])
    expect(attachments.nth(1)).to_have_attribute("alt", ATTACHMENTS[1][0])
    expect(attachments.nth(2)).to_contain_text(ATTACHMENTS[2][0])
    shot(page, output_path, "widget")
    guard.check(shown=[*MESSAGES, AGENT_REPLY, AGENT_NAME, POOL_NAME], where="widget")


def open_ticket(page: Page, ticket_id: int) -> None:
    page.locator(f'[data-testid="desk-ticket-row"][data-ticket-id="{ticket_id}"]').click()
    expect(by_testid(page, "desk-ticket-title")).to_contain_text(f"#{ticket_id}")


def open_desk(world: World, page: Page, tab: str) -> None:
    page.goto(world.server.url + "/desk/")
    expect(by_testid(page, "desk-connection")).to_have_text("Live")
    page.locator(f'[data-testid="desk-tab"][data-tab="{tab}"]').click()
    # The tab's list is shown (not the one before it) before anything in it is read or clicked.
    expect(page.locator(f'[data-testid="desk-tab"][data-tab="{tab}"]')).to_have_attribute(
        "aria-selected", "true"
    )


def test_the_desk_of_an_agent_of_the_pool_shows_every_payload_as_text(
    world: World, signed_in, output_path: str
):
    page, guard = signed_in("agent-billing")
    open_desk(world, page, "pool:xss")
    # The queue: the customers' names, their last words, the pool's name on its tab.
    queue = by_testid(page, "desk-queue")
    for name in NAMES[:-1]:  # the last one was moved to billing
        expect(queue).to_contain_text(name)
    expect(page.locator('[data-testid="desk-tab"][data-tab="pool:xss"]')).to_contain_text(POOL_NAME)
    guard.check(shown=[*NAMES[:-1], POOL_NAME, AGENT_NAME], where="desk queue")

    open_ticket(page, world.main_ticket)
    messages = by_testid(page, "desk-messages")
    expect(messages).to_contain_text(MESSAGES[-1])
    expect(by_testid(page, "desk-ticket-title")).to_contain_text(MAIN_NAME)
    expect(by_testid(page, "desk-trail")).to_contain_text(RULE_NAME)
    expect(by_testid(page, "desk-notes")).to_contain_text(NOTE)
    # Canned replies: the title in the menu; chosen, its text (placeholders filled) to edit.
    canned = by_testid(page, "desk-canned-select")
    expect(canned.locator("option", has_text=CANNED_TITLE)).to_have_count(1)
    canned.select_option(label=CANNED_TITLE)
    expect(by_testid(page, "desk-reply-input")).to_have_value(
        CANNED_TEXT.replace("{customer_name}", MAIN_NAME)
    )
    # What the agent writes here, shown back to them.
    by_testid(page, "desk-reply-input").fill(DESK_REPLY)
    by_testid(page, "desk-reply-send").click()
    expect(messages).to_contain_text(DESK_REPLY)
    by_testid(page, "desk-note-input").fill(DESK_NOTE)
    by_testid(page, "desk-note-add").click()
    expect(by_testid(page, "desk-notes")).to_contain_text(DESK_NOTE)
    shot(page, output_path, "desk-agent")
    guard.check(
        shown=[
            *MESSAGES,
            *(name for name, _, _ in ATTACHMENTS[2:]),
            MAIN_NAME,
            AGENT_REPLY,
            DESK_REPLY,
            NOTE,
            DESK_NOTE,
            RULE_NAME,
            CANNED_TITLE,
            POOL_NAME,
        ],
        where="desk ticket (agent)",
    )


def test_the_desk_of_a_supervisor_shows_every_payload_as_text(
    world: World, signed_in, output_path: str
):
    page, guard = signed_in("manager")
    open_desk(world, page, "all")
    queue = by_testid(page, "desk-queue")
    for name in [*NAMES, MAIN_NAME]:
        expect(queue).to_contain_text(name)
    guard.check(shown=[*NAMES, MAIN_NAME, POOL_NAME], where="desk queue (supervisor)")

    open_ticket(page, world.rerouted_ticket)
    # The move: the reason in the trail and in the activity.
    expect(by_testid(page, "desk-trail")).to_contain_text(REROUTE_REASON)
    expect(by_testid(page, "desk-activity")).to_contain_text(REROUTE_REASON)
    guard.check(shown=[NAMES[-1], NAME_FIRST_MESSAGES[-1], REROUTE_REASON], where="moved ticket")

    open_ticket(page, world.main_ticket)
    expect(by_testid(page, "desk-messages")).to_contain_text(MESSAGES[-1])
    expect(by_testid(page, "desk-context")).not_to_be_empty()
    shot(page, output_path, "desk-supervisor")
    guard.check(
        shown=[*MESSAGES, MAIN_NAME, AGENT_REPLY, NOTE, RULE_NAME, AGENT_NAME],
        where="desk ticket (supervisor)",
    )


def test_the_review_queue_shows_every_payload_as_text(world: World, signed_in, output_path: str):
    page, guard = signed_in("reviewer")
    page.goto(world.server.url + "/admin/review/reviewitem/")
    row = page.locator("#result_list tbody tr", has_text=REVIEW_TEXT[:40])
    expect(row).to_have_count(1)
    guard.check(shown=[REVIEW_TEXT], where="review queue")
    row.locator("th a, td a").first.click()
    expect(page.locator("#content")).to_contain_text(REVIEW_TEXT[:40])
    shot(page, output_path, "review-item")
    guard.check(shown=[], where="review item")


def test_the_reports_show_every_payload_as_text(world: World, signed_in, output_path: str):
    page, guard = signed_in("manager")
    page.goto(world.server.url + "/reports/")
    expect(page.locator("[data-testid=chart-tickets]")).to_be_visible()
    expect(by_testid(page, "reports-pool").locator("option", has_text=POOL_NAME)).to_have_count(1)
    guard.check(shown=[POOL_NAME], where="reports dashboard")
    page.goto(world.server.url + "/reports/?pool=xss")
    expect(page.locator("h1")).to_contain_text(POOL_NAME)
    guard.check(shown=[POOL_NAME], where="reports dashboard of the pool")

    page.goto(world.server.url + "/reports/decisions/?pool=xss")
    receipts = by_testid(page, "receipt")
    expect(receipts.first).to_be_visible()
    # The customers' first messages, minimised (PII redacted) and cut at 160 characters.
    guard.check(shown=[NAME_FIRST_MESSAGES[0][:40], POOL_NAME], where="decision receipts")
    # Filters come from the address: shown back as text, a valid one as a chip, an invalid
    # one in the error page.
    query = urllib.parse.urlencode({"model": REFLECTED, "pool": "xss"})
    page.goto(f"{world.server.url}/reports/decisions/?{query}")
    expect(by_testid(page, "drill-filters")).to_contain_text(REFLECTED)
    shot(page, output_path, "reports-decisions")
    guard.check(shown=[REFLECTED], where="decision receipts with a crafted filter")
    page.goto(
        f"{world.server.url}/reports/decisions/?{urllib.parse.urlencode({'tier': REFLECTED})}"
    )
    expect(by_testid(page, "reports-errors")).to_contain_text(REFLECTED)
    guard.check(shown=[REFLECTED], where="reports refusing a crafted filter")


def test_the_admin_changelists_show_every_payload_as_text(
    world: World, signed_in, output_path: str
):
    page, guard = signed_in("admin")
    for path, link, shown in [
        ("/admin/orchestrator/routingrule/", RULE_NAME, [RULE_NAME, RULE_PATTERN, POOL_NAME]),
        ("/admin/pools/pool/", POOL_NAME, [POOL_NAME]),
        ("/admin/desk/cannedreply/", CANNED_TITLE, [CANNED_TITLE, POOL_NAME]),
        ("/admin/chat/customer/", MAIN_NAME, [MAIN_NAME, *NAMES, REVIEW_NAME]),
        ("/admin/auth/user/", "agent-billing", [AGENT_NAME]),
    ]:
        page.goto(world.server.url + path)
        expect(page.locator("#result_list")).to_be_visible()
        guard.check(shown=shown, where=path)
        page.locator("#result_list tbody tr th a", has_text=link).first.click()
        expect(page.locator("#content form")).to_be_visible()
        guard.check(shown=[], where=f"change form of {link}")
    shot(page, output_path, "admin")

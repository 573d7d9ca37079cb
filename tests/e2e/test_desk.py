"""The agent desk in real Chromium, next to a real customer widget: what each person sees."""

import contextlib
import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.request import Request, urlopen

import pytest
from playwright.sync_api import Browser, Page, Route, expect
from playwright.sync_api import Error as PlaywrightError

from tests.fakes.files import pdf_bytes, png_bytes
from tests.fakes.messages_api import error, text
from tests.servers import manage

pytestmark = pytest.mark.browser

INVOICE_QUESTION = "Please send me a copy of my latest invoice"


PDF = pdf_bytes()


def by_testid(page: Page, testid: str):
    return page.locator(f'[data-testid="{testid}"]')


def row(page: Page, ticket_id: int):
    return page.locator(f'[data-testid="desk-ticket-row"][data-ticket-id="{ticket_id}"]')


def open_desk(staff_page, server, username: str, tab: str, **context_args) -> Page:
    page = staff_page(server, username, **context_args)
    expect(by_testid(page, "desk-connection")).to_have_text("Live")
    page.locator(f'[data-testid="desk-tab"][data-tab="{tab}"]').click()
    expect(page.locator(f'[data-testid="desk-tab"][data-tab="{tab}"]')).to_have_attribute(
        "aria-selected", "true"
    )
    return page


def customer_conversation(page: Page) -> dict:
    stored = page.evaluate(
        "() => Object.entries(localStorage)"
        ".find(([key]) => key.startsWith('supportdesk:conversation:'))[1]"
    )
    return json.loads(stored)


def customer_messages(server, conversation: dict) -> list[dict]:
    """The conversation as the customer's own token reads it over REST."""
    request = Request(
        f"{server.url}/api/v1/conversations/{conversation['id']}/",
        headers={"Authorization": f"Bearer {conversation['token']}"},
    )
    with urlopen(request, timeout=5) as response:
        return json.load(response)["messages"]


def ticket_of(server, desk_page: Page, conversation_id: str) -> int:
    """The ticket id of a conversation, as the signed-in staff user's REST API answers."""
    for _ in range(50):
        answer = desk_page.request.get(
            f"{server.url}/api/v1/tickets/?conversation={conversation_id}"
        ).json()
        if answer["results"]:
            return int(answer["results"][0]["id"])
        desk_page.wait_for_timeout(200)
    raise AssertionError(f"no ticket visible for conversation {conversation_id}")


def wait_until(page: Page, condition: Callable[[], object], failure: str) -> None:
    """Wait, letting the page's events arrive, until `condition()` holds (at most 10 s)."""
    for _ in range(100):
        if condition():
            return
        page.wait_for_timeout(100)
    raise AssertionError(failure)


def customer_asks(browser: Browser, server, question: str):
    """A customer in their own browser context opens the widget and asks; returns the context,
    the page and their stored conversation once the question reached the billing team."""
    context = browser.new_context()
    customer = context.new_page()
    customer.goto(server.url + "/")
    by_testid(customer, "sd-launcher").click()
    by_testid(customer, "sd-input").fill(question)
    by_testid(customer, "sd-send").click()
    expect(by_testid(customer, "sd-status")).to_contain_text("Billing team")
    return context, customer, customer_conversation(customer)


@contextlib.contextmanager
def billing_ticket(
    staff_page, server, browser: Browser, question: str
) -> Iterator[tuple[Page, int, dict]]:
    """The billing desk (its pool's tab) once a customer's question is a row in it: the desk
    page, the ticket's id and the customer's stored conversation."""
    billing = open_desk(staff_page, server, "agent-billing", "pool:billing")
    customer_context, _customer, conversation = customer_asks(browser, server, question)
    try:
        ticket_id = ticket_of(server, billing, conversation["id"])
        expect(row(billing, ticket_id)).to_be_visible()
        yield billing, ticket_id, conversation
    finally:
        customer_context.close()


def test_a_billing_question_is_answered_noted_and_moved_on_the_desk(
    live_server_proc, browser: Browser, staff_page, output_path: str
):
    billing = open_desk(staff_page, live_server_proc, "agent-billing", "pool:billing")
    # The technical agent works on a phone.
    technical = open_desk(
        staff_page,
        live_server_proc,
        "agent-technical",
        "pool:technical",
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
    )

    customer_context, customer, conversation = customer_asks(
        browser, live_server_proc, INVOICE_QUESTION
    )
    try:
        ticket_id = ticket_of(live_server_proc, billing, conversation["id"])

        # The ticket appears on the billing desk without a reload.
        ticket_row = row(billing, ticket_id)
        expect(ticket_row).to_be_visible()
        expect(ticket_row).to_contain_text(INVOICE_QUESTION)
        expect(by_testid(ticket_row, "desk-row-sla")).to_have_text(re.compile(r"SLA \d+:\d\d"))

        ticket_row.click()
        expect(by_testid(billing, "desk-ticket-title")).to_contain_text(f"#{ticket_id}")
        expect(
            by_testid(billing, "desk-message").filter(has_text=INVOICE_QUESTION)
        ).to_have_attribute("data-sender", "customer")
        # Without an API key there are no AI drafts, and the desk does not offer them.
        expect(by_testid(billing, "desk-reply-input")).to_be_visible()
        expect(by_testid(billing, "desk-draft")).to_be_hidden()
        trail = by_testid(billing, "desk-trail")
        expect(trail).to_contain_text("billing")
        expect(by_testid(trail, "desk-trail-confidence").first).to_contain_text("%")

        # The customer types: the agent sees it.
        by_testid(customer, "sd-input").press_sequentially("one more thing")
        expect(by_testid(billing, "desk-typing")).to_have_text("Customer is typing…")
        by_testid(customer, "sd-input").fill("")

        # The canned reply arrives filled in for this customer, to edit before sending.
        by_testid(billing, "desk-canned-select").select_option(label="Invoice copy")
        reply_box = by_testid(billing, "desk-reply-input")
        expect(reply_box).to_have_value(re.compile(r"^Hi there, you can download every invoice"))
        reply_box.press("End")
        reply_box.press_sequentially(" Anything else?")
        expect(by_testid(customer, "sd-typing")).to_have_text("An agent is typing…")
        by_testid(billing, "desk-reply-send").click()
        expect(reply_box).to_have_value("")

        agent_bubble = by_testid(customer, "sd-message").filter(has_text="download every invoice")
        expect(agent_bubble).to_have_attribute("data-sender", "agent")
        expect(agent_bubble).to_contain_text("Anything else?")
        sent = by_testid(billing, "desk-message").filter(has_text="download every invoice")
        expect(sent).to_have_attribute("data-sender", "agent")
        expect(sent).to_contain_text("Bea")  # the author's name, as staff see it
        expect(by_testid(billing, "desk-status")).to_have_text("Assigned")
        expect(by_testid(billing, "desk-assignee")).to_contain_text("Bea")
        expect(by_testid(billing, "desk-sla")).to_have_text("Answered")

        # Files: an image is shown inline on both sides, a PDF as a link.
        attach = by_testid(billing, "desk-attach")
        attach.set_input_files(
            {
                "name": "receipt.png",
                "mimeType": "image/png",
                "buffer": png_bytes(8, 6, rgb=b"\xff\x00\x00"),
            }
        )
        desk_image = billing.locator('[data-testid="desk-message"] img[alt="receipt.png"]')
        expect(desk_image).to_have_js_property("naturalWidth", 8)
        attach.set_input_files(
            {"name": "invoice-0042.pdf", "mimeType": "application/pdf", "buffer": PDF}
        )
        pdf_link = billing.locator('[data-testid="desk-attachment"] a', has_text="invoice-0042.pdf")
        expect(pdf_link).to_have_attribute("href", re.compile(r"^/api/v1/attachments/\d+/$"))
        customer_image = customer.locator('[data-testid="sd-attachment"][alt="receipt.png"]')
        expect(customer_image).to_have_js_property("naturalWidth", 8)
        expect(
            by_testid(customer, "sd-attachment").filter(has_text="invoice-0042.pdf")
        ).to_be_visible()

        # An internal note is for staff only.
        note_text = f"Internal: customer on legacy plan {uuid.uuid4().hex[:8]}"
        by_testid(billing, "desk-note-input").fill(note_text)
        by_testid(billing, "desk-note-add").click()
        expect(by_testid(billing, "desk-note").filter(has_text=note_text)).to_have_count(1)
        expect(by_testid(billing, "desk-message").filter(has_text=note_text)).to_have_count(0)
        customer.wait_for_timeout(1000)  # anything leaked over the socket would be here by now
        expect(by_testid(customer, "sd-panel")).not_to_contain_text(note_text)
        texts = [message["text"] for message in customer_messages(live_server_proc, conversation)]
        assert note_text not in " ".join(texts)
        assert any("download every invoice" in text for text in texts)

        Path(output_path).mkdir(parents=True, exist_ok=True)
        billing.screenshot(path=str(Path(output_path) / "desk-billing.png"), full_page=True)

        # "Wrong pool": a reason is required, then the ticket moves to technical.
        by_testid(billing, "desk-reroute").click()
        by_testid(billing, "desk-reroute-pool").select_option("technical")
        by_testid(billing, "desk-reroute-submit").click()
        expect(by_testid(billing, "desk-error")).to_contain_text("reason")
        by_testid(billing, "desk-reroute-reason").fill("Customer cannot log in to download it")
        by_testid(billing, "desk-reroute-submit").click()

        # The technical agent (on a phone) sees it arrive, live, and can open it.
        moved = row(technical, ticket_id)
        expect(moved).to_be_visible()
        moved.click()
        expect(by_testid(technical, "desk-queue")).to_be_hidden()
        expect(
            by_testid(technical, "desk-message").filter(has_text=INVOICE_QUESTION)
        ).to_be_visible()
        expect(by_testid(technical, "desk-note").filter(has_text=note_text)).to_have_count(1)
        expect(by_testid(technical, "desk-activity")).to_contain_text("Moved to another pool")
        technical.screenshot(path=str(Path(output_path) / "desk-technical-phone.png"))

        # The billing agent's view of it is gone.
        expect(by_testid(billing, "desk-access-lost")).to_be_visible()
        expect(by_testid(billing, "desk-message")).to_have_count(0)
        expect(by_testid(billing, "desk-note")).to_have_count(0)
        expect(by_testid(billing, "desk-reply-input")).to_be_hidden()
        expect(row(billing, ticket_id)).to_have_count(0)
        expect(by_testid(customer, "sd-status")).to_contain_text("Technical team")
        billing.screenshot(path=str(Path(output_path) / "desk-billing-after-move.png"))
    finally:
        customer_context.close()


def test_an_ai_draft_fills_the_reply_box_and_a_failed_one_says_why(
    live_server_with_llm, messages_api_standin, browser: Browser, staff_page, output_path: str
):
    billing = open_desk(staff_page, live_server_with_llm, "agent-billing", "pool:billing")
    draft_button = by_testid(billing, "desk-draft")
    customer_context, customer, conversation = customer_asks(
        browser, live_server_with_llm, INVOICE_QUESTION
    )
    try:
        ticket_id = ticket_of(live_server_with_llm, billing, conversation["id"])
        row(billing, ticket_id).click()
        expect(by_testid(billing, "desk-message").filter(has_text=INVOICE_QUESTION)).to_be_visible()
        expect(draft_button).to_be_visible()

        drafted = "Hi {customer_name}, every invoice is under Settings → Billing → Invoices."
        messages_api_standin.enqueue(text(drafted))
        draft_button.click()
        reply_box = by_testid(billing, "desk-reply-input")
        expect(reply_box).to_have_value(
            "Hi there, every invoice is under Settings → Billing → Invoices."
        )
        expect(by_testid(billing, "desk-draft-error")).to_be_hidden()
        # A draft is never sent by itself.
        customer.wait_for_timeout(1000)
        expect(by_testid(customer, "sd-panel")).not_to_contain_text("every invoice is under")
        expect(by_testid(billing, "desk-message").filter(has_text="every invoice")).to_have_count(0)

        messages_api_standin.enqueue(
            error(400, "invalid_request_error", "prompt is too long: 250000 tokens")
        )
        draft_button.click()
        draft_error = by_testid(billing, "desk-draft-error")
        expect(draft_error).to_contain_text("No draft available")
        expect(draft_error).to_contain_text("too long")
        Path(output_path).mkdir(parents=True, exist_ok=True)
        billing.screenshot(path=str(Path(output_path) / "desk-draft-failed.png"))

        # The reply box keeps the agent's text and still sends.
        expect(reply_box).to_be_editable()
        reply_box.press("End")
        reply_box.press_sequentially(" Anything else?")
        by_testid(billing, "desk-reply-send").click()
        expect(
            by_testid(customer, "sd-message").filter(has_text="every invoice is under")
        ).to_have_attribute("data-sender", "agent")
    finally:
        customer_context.close()


# What the customer says while the desk's server is down, stored by the services directly (no
# server is there to take it): its event is published to nobody, so only a resync shows it.
CUSTOMER_SAYS = """
import os
from apps.chat.models import Conversation, Message
from apps.flows.messages import message_post
message_post(conversation=Conversation.objects.get(pk=os.environ["CONVERSATION"]),
             text=os.environ["TEXT"], sender=Message.Sender.CUSTOMER)
"""


def test_after_an_outage_the_desk_shows_what_it_missed(
    live_server_proc, browser: Browser, staff_page
):
    question = "My invoice has the wrong address on it"
    with billing_ticket(staff_page, live_server_proc, browser, question) as (
        billing,
        ticket_id,
        conversation,
    ):
        # The filter and the presence menu answer from the server.
        by_testid(billing, "desk-filter").select_option("resolved")
        expect(row(billing, ticket_id)).to_have_count(0)
        expect(billing).to_have_url(re.compile(r"/desk/\?tab=pool%3Abilling&filter=resolved$"))
        by_testid(billing, "desk-filter").select_option("open")
        by_testid(billing, "desk-presence").select_option("away")
        expect(by_testid(billing, "desk-presence")).to_have_attribute("data-presence", "away")
        overview = billing.request.get(f"{live_server_proc.url}/api/v1/desk/").json()
        assert overview["presence"] == "away"

        row(billing, ticket_id).click()
        expect(by_testid(billing, "desk-message").filter(has_text="wrong address")).to_be_visible()

        live_server_proc.stop()  # every socket is closed from the server's side
        expect(by_testid(billing, "desk-connection")).to_have_text("Reconnecting…")
        missed = f"It should be 12 Elm Street {uuid.uuid4().hex[:6]}"
        env = {**live_server_proc.env, "CONVERSATION": conversation["id"], "TEXT": missed}
        manage("shell", "-c", CUSTOMER_SAYS, env=env)
        live_server_proc.start()

        expect(by_testid(billing, "desk-connection")).to_have_text("Live", timeout=30_000)
        expect(by_testid(billing, "desk-message").filter(has_text=missed)).to_have_count(1)
        expect(row(billing, ticket_id)).to_contain_text(missed)


def test_the_newest_navigation_wins_over_a_slower_one_sent_before_it(
    live_server_proc, browser: Browser, staff_page
):
    """An agent clicks a tab, then a ticket in the list still shown before the tab's answer
    came: the ticket stays open, the late tab answer does not replace it."""
    question = "Why was I billed twice this month?"
    with billing_ticket(staff_page, live_server_proc, browser, question) as (billing, ticket_id, _):
        held: list[Route] = []
        ended: list[str] = []  # the tab's request, once answered or given up
        billing.route(re.compile(r"/desk/\?tab=mine"), lambda route: held.append(route))
        for event in ("requestfinished", "requestfailed"):
            billing.on(event, lambda request: ended.append(request.url))
        billing.locator('[data-testid="desk-tab"][data-tab="mine"]').click()
        wait_until(billing, lambda: held, "the tab's request never left the page")

        row(billing, ticket_id).click()
        expect(by_testid(billing, "desk-ticket-title")).to_contain_text(f"#{ticket_id}")
        with contextlib.suppress(PlaywrightError):  # or its request was given up
            held[0].continue_()  # the slow answer comes now
        wait_until(billing, lambda: any("tab=mine" in url for url in ended), "no tab answer")
        billing.wait_for_timeout(500)  # an answer that came is swapped in by now
        expect(by_testid(billing, "desk-ticket-title")).to_contain_text(f"#{ticket_id}")
        expect(
            billing.locator('[data-testid="desk-tab"][data-tab="pool:billing"]')
        ).to_have_attribute("aria-selected", "true")
        expect(billing).to_have_url(re.compile(rf"ticket={ticket_id}$"))
        expect(by_testid(billing, "desk-error")).to_be_hidden()  # a request given up is no error


def test_the_desk_needs_a_staff_login(live_server_proc, page: Page):
    page.goto(live_server_proc.url + "/desk/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/desk/$"))

"""The customer widget in real Chromium: what a person sees."""

import json
import re
import urllib.request

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def widget(page: Page, testid: str):
    # Playwright's CSS engine pierces the widget's open shadow root.
    return page.locator(f'[data-testid="{testid}"]')


def conversation_messages(server, page: Page) -> list[dict]:
    """The stored messages, read through the REST API with the widget's own token."""
    stored = page.evaluate(
        "() => Object.entries(localStorage)"
        ".find(([key]) => key.startsWith('supportdesk:conversation:'))[1]"
    )
    conversation = json.loads(stored)
    request = urllib.request.Request(
        f"{server.url}/api/v1/conversations/{conversation['id']}/",
        headers={"Authorization": f"Bearer {conversation['token']}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)["messages"]


def send(page: Page, text: str) -> None:
    widget(page, "sd-input").fill(text)
    widget(page, "sd-send").click()


def test_customer_sends_sees_status_and_history_survives_reload(live_server_proc, page: Page):
    page.goto(live_server_proc.url + "/")
    widget(page, "sd-launcher").click()
    send(page, "<img src=x onerror=alert(1)> Please send me a copy of my latest invoice")

    delivered = widget(page, "sd-message").filter(has_text="latest invoice")
    expect(delivered).to_have_count(1)
    expect(delivered).to_have_attribute("data-seq", "1")
    # Rendered as text, not markup.
    expect(delivered).to_contain_text("<img src=x onerror=alert(1)>")
    expect(page.locator("img[src=x]")).to_have_count(0)
    # Routed by the local model seed_demo trained: the customer hears which team, never how sure.
    expect(widget(page, "sd-status")).to_have_text("Your request is with our Billing team.")
    expect(widget(page, "sd-panel")).not_to_contain_text(re.compile(r"\d\.\d|confiden|%", re.I))

    page.reload()
    widget(page, "sd-panel").wait_for(state="visible")
    expect(widget(page, "sd-message").filter(has_text="latest invoice")).to_have_count(1)
    expect(widget(page, "sd-status")).to_have_text("Your request is with our Billing team.")


def test_message_sent_while_the_server_is_down_is_delivered_once(live_server_proc, page: Page):
    page.goto(live_server_proc.url + "/")
    widget(page, "sd-launcher").click()
    send(page, "first message before the outage")
    expect(widget(page, "sd-message").filter(has_text="before the outage")).to_have_attribute(
        "data-seq", "1"
    )

    live_server_proc.stop()  # the server goes away: every socket is closed from its side
    expect(widget(page, "sd-connection")).to_contain_text(
        re.compile("Reconnecting|Offline|Connecting")
    )
    send(page, "written while disconnected")
    pending = widget(page, "sd-message").filter(has_text="written while disconnected")
    expect(pending).to_have_attribute("data-pending", "true")

    live_server_proc.start()
    expect(pending).not_to_have_attribute("data-pending", "true", timeout=30_000)
    expect(pending).to_have_attribute("data-seq", re.compile(r"\d+"))
    expect(widget(page, "sd-message").filter(has_text="written while disconnected")).to_have_count(
        1
    )

    texts = [m["text"] for m in conversation_messages(live_server_proc, page)]
    assert texts == ["first message before the outage", "written while disconnected"]

    page.reload()
    widget(page, "sd-panel").wait_for(state="visible")
    expect(widget(page, "sd-message")).to_have_count(2)


def test_without_websockets_the_widget_chats_over_http(live_server_proc, page: Page):
    page.add_init_script("delete window.WebSocket;")
    page.goto(live_server_proc.url + "/")
    widget(page, "sd-launcher").click()
    send(page, "my browser has no websockets")
    delivered = widget(page, "sd-message").filter(has_text="no websockets")
    expect(delivered).to_have_attribute("data-seq", "1", timeout=15_000)
    expect(widget(page, "sd-status")).not_to_be_empty()
    assert page.evaluate("window.SupportDeskWidget._debug().transport") == "http"
    assert [m["text"] for m in conversation_messages(live_server_proc, page)] == [
        "my browser has no websockets"
    ]

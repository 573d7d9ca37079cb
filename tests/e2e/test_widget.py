"""The customer widget in real Chromium: what a person sees."""

import json
import re
import sqlite3
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.fakes.files import pdf_bytes, png_bytes
from tests.servers import AsgiServer, embedded_env, manage

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


@pytest.fixture(scope="module")
def server_with_short_busy_timeout(tmp_path_factory) -> Iterator[tuple[AsgiServer, Path]]:
    """An embedded server whose SQLite writes give up after 1 s behind another writer."""
    workdir = tmp_path_factory.mktemp("live-busy")
    env = embedded_env(workdir, SQLITE_BUSY_TIMEOUT_SECONDS="1", EMBEDDED_BEAT="false")
    manage("migrate", "--noinput", env=env)
    manage("seed_demo", env=env)
    server = AsgiServer(env, log=workdir / "server.log")
    env["CHAT_ALLOWED_ORIGINS"] = server.url
    server.start()
    yield server, workdir / "db.sqlite3"
    server.stop()


def test_a_message_answered_unavailable_is_kept_and_delivered_once(
    server_with_short_busy_timeout, page: Page
):
    server, database = server_with_short_busy_timeout
    page.goto(server.url + "/")
    widget(page, "sd-launcher").click()
    send(page, "first message, before the database is held")
    expect(widget(page, "sd-message").filter(has_text="before the database")).to_have_attribute(
        "data-seq", "1"
    )
    # Another writer (a backup, a long command) holds SQLite past the server's busy timeout.
    holder = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Timer(3.0, holder.execute, args=("COMMIT",))
    released.start()
    try:
        send(page, "written while the database is held")
        expect(widget(page, "sd-error")).to_contain_text("briefly unavailable")
        pending = widget(page, "sd-message").filter(has_text="while the database is held")
        expect(pending).to_have_attribute("data-pending", "true")
        # The widget sends it again after retry_after; once the writer is done it is stored.
        expect(pending).to_have_attribute("data-seq", re.compile(r"\d+"), timeout=20_000)
    finally:
        released.join()
        holder.close()
    expect(pending).not_to_have_attribute("data-failed", "true")
    texts = [m["text"] for m in conversation_messages(server, page)]
    assert texts == [
        "first message, before the database is held",
        "written while the database is held",
    ]


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


# --- attachments and "Talk to a person" ----------------------------------------------------------


PDF = pdf_bytes()


def attach(page: Page, name: str, mime: str, content: bytes) -> None:
    widget(page, "sd-attach-input").set_input_files(
        {"name": name, "mimeType": mime, "buffer": content}
    )


def test_customer_sends_an_image_and_a_pdf_and_sees_them_in_the_chat(live_server_proc, page: Page):
    page.goto(live_server_proc.url + "/")
    widget(page, "sd-launcher").click()
    expect(widget(page, "sd-attach")).to_be_visible()
    widget(page, "sd-input").fill("The checkout page shows this error")
    attach(page, "error screen.png", "image/png", png_bytes(3, 2))

    image = page.locator('img[data-testid="sd-attachment"]')
    expect(image).to_have_count(1)
    # Fetched with the conversation token and shown from a blob: URL, never the API URL.
    expect(image).to_have_attribute("src", re.compile(r"^blob:"))
    expect(image).to_have_attribute("alt", "error screen.png")
    page.wait_for_function(
        "() => { const i = document.querySelector('supportdesk-widget').shadowRoot"
        ".querySelector('img[data-testid=sd-attachment]'); return i && i.naturalWidth === 3; }"
    )
    bubble = widget(page, "sd-message").filter(has=image)
    expect(bubble).to_contain_text("The checkout page shows this error")
    expect(bubble).to_have_attribute("data-seq", "1")
    expect(widget(page, "sd-input")).to_have_value("")

    attach(page, "invoice.pdf", "application/pdf", PDF)
    link = page.locator('a[data-testid="sd-attachment"]')
    expect(link).to_contain_text("invoice.pdf")
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename == "invoice.pdf"
    with open(download.path(), "rb") as saved:
        assert saved.read() == PDF

    stored = conversation_messages(live_server_proc, page)
    assert [[a["name"] for a in m["attachments"]] for m in stored] == [
        ["error screen.png"],
        ["invoice.pdf"],
    ]
    # After a reload the history, pictures included, comes back.
    page.reload()
    widget(page, "sd-panel").wait_for(state="visible")
    expect(page.locator('img[data-testid="sd-attachment"]')).to_have_attribute(
        "src", re.compile(r"^blob:")
    )


def test_a_file_that_is_too_big_or_not_an_image_or_pdf_gets_a_clear_error(
    live_server_proc, page: Page
):
    page.goto(live_server_proc.url + "/")
    widget(page, "sd-launcher").click()

    attach(page, "notes.txt", "text/plain", b"just some notes")
    expect(widget(page, "sd-error")).to_have_text(
        "Only images (PNG, JPEG, GIF, WebP) and PDF files can be sent."
    )
    attach(page, "huge.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * (10 * 1024 * 1024))
    expect(widget(page, "sd-error")).to_have_text(
        "That file is too large. Files can be up to 10 MB."
    )
    expect(widget(page, "sd-message")).to_have_count(0)

    # The browser believes the name and type; the server reads the bytes and refuses.
    attach(page, "cat.png", "image/png", b"<html><script>alert(1)</script></html>")
    expect(widget(page, "sd-error")).to_have_text(
        "Only images (PNG, JPEG, GIF, WebP) and PDF files can be sent."
    )
    refused = widget(page, "sd-message").filter(has_text="cat.png")
    expect(refused).to_have_attribute("data-failed", "true")
    expect(page.locator("script", has_text="alert(1)")).to_have_count(0)


def test_customer_asks_for_a_person_then_writes_and_is_told_who_will_help(
    live_server_proc, page: Page
):
    page.goto(live_server_proc.url + "/")
    widget(page, "sd-launcher").click()
    widget(page, "sd-handoff").click()
    expect(widget(page, "sd-message").filter(has_text="a person will pick it up")).to_have_count(1)
    expect(widget(page, "sd-handoff")).to_be_disabled()

    send(page, "I was charged twice for my subscription this month")
    expect(widget(page, "sd-status")).to_have_text(
        re.compile(
            r"Your request is with our \w+ team\.|A member of our \w+ team is handling"
            r"|A member of our team is reviewing"
        )
    )
    expect(
        widget(page, "sd-message").filter(has_text=re.compile(r"A person .* reply here"))
    ).to_have_count(1)
    expect(widget(page, "sd-panel")).not_to_contain_text(re.compile(r"confiden|%", re.I))

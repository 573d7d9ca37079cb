"""Browser tests: real Debian Chromium driving the widget against a real uvicorn server.

Run in their own pytest process (`-m browser`): Playwright's sync API cannot share one with
pytest-asyncio. The server is a subprocess so a test can stop and restart it (a real
server-side close) while the SQLite file keeps the data.
"""

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.fakes.messages_api import MessagesApiStandIn
from tests.servers import AsgiServer, embedded_env, migrated_sqlite

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def live_server_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsgiServer]:
    workdir = tmp_path_factory.mktemp("live")
    env = embedded_env(workdir, MEDIA_ROOT=str(workdir / "media"))
    migrated_sqlite(env, seed=True)
    server = AsgiServer(env, log=workdir / "server.log")
    # Only the page's own origin may open the chat socket.
    env["CHAT_ALLOWED_ORIGINS"] = server.url
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


DEMO_PASSWORD = "supportdesk-demo"  # seed_demo's demo staff password


@pytest.fixture(scope="session")
def messages_api_standin() -> Iterator[MessagesApiStandIn]:
    """The Anthropic Messages API stand-in, for a live server with the LLM tiers switched on."""
    with MessagesApiStandIn() as standin:
        yield standin


@pytest.fixture(scope="session")
def live_server_with_llm(
    tmp_path_factory: pytest.TempPathFactory, messages_api_standin: MessagesApiStandIn
) -> Iterator[AsgiServer]:
    """Like `live_server_proc`, with an API key and the real SDK pointed at the stand-in: AI
    drafts are on. Script its answers with `messages_api_standin.enqueue(...)`."""
    workdir = tmp_path_factory.mktemp("live-llm")
    env = embedded_env(
        workdir,
        ANTHROPIC_API_KEY="sk-ant-test-key",
        ANTHROPIC_BASE_URL=messages_api_standin.url,
    )
    migrated_sqlite(env, seed=True)
    server = AsgiServer(env, log=workdir / "server.log")
    env["CHAT_ALLOWED_ORIGINS"] = server.url
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def csp_violations() -> Iterator[list[str]]:
    """What Chromium refused under the pages' Content-Security-Policy during the test: a page
    that needs an inline script, eval or a foreign origin fails the test that showed it."""
    found: list[str] = []
    yield found
    assert not found, f"Content-Security-Policy violations: {found}"


def watch_csp(page: Page, found: list[str]) -> Page:
    def on_console(message: Any) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            found.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    return page


@pytest.fixture
def page(page: Page, csp_violations: list[str]) -> Page:
    """pytest-playwright's page, watched for Content-Security-Policy violations."""
    return watch_csp(page, csp_violations)


@pytest.fixture
def staff_page(browser: Browser, csp_violations: list[str]) -> Iterator[Callable[..., Page]]:
    """Open a page in a fresh browser context (its own cookies), signed in on `server` as a
    seed_demo staff user through the admin login, at `next_path` (default the desk). The
    contexts are closed after the test."""
    contexts: list[BrowserContext] = []

    def open_as(
        server: AsgiServer, username: str, *, next_path: str = "/desk/", **context_args: Any
    ) -> Page:
        context = browser.new_context(**context_args)
        contexts.append(context)
        page = watch_csp(context.new_page(), csp_violations)
        page.goto(f"{server.url}/admin/login/?next={next_path}")
        page.fill("#id_username", username)
        page.fill("#id_password", DEMO_PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"**{next_path}")
        return page

    yield open_as
    for context in contexts:
        context.close()

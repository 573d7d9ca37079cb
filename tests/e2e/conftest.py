"""Browser tests: real Debian Chromium driving the widget against a real uvicorn server.

Run in their own pytest process (`-m browser`): Playwright's sync API cannot share one with
pytest-asyncio. The server is a subprocess so a test can stop and restart it (a real
server-side close) while the SQLite file keeps the data.
"""

import os
from collections.abc import Iterator

import pytest

from tests.servers import AsgiServer, embedded_env, manage

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
    env = embedded_env(workdir)
    manage("migrate", "--noinput", env=env)
    manage("seed_demo", env=env)
    server = AsgiServer(env, log=workdir / "server.log")
    # Only the page's own origin may open the chat socket.
    env["CHAT_ALLOWED_ORIGINS"] = server.url
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}

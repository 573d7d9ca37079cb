"""The client address through the real servers (issue 12, finding 1): uvicorn as `make run`
starts it (no proxy: X-Forwarded-For ignored), and behind nginx with the shipped site (nginx
overwrites X-Forwarded-For with the peer's address, uvicorn believes only nginx)."""

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import AsgiServer, NginxServer, embedded_env, free_port, migrated_sqlite

pytestmark = [pytest.mark.scale, pytest.mark.timeout(120)]


def post_conversation(port: int, *, source: str = "127.0.0.1", forged: str | None = None) -> int:
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=10, source_address=(source, 0)
    )
    headers = {"Content-Type": "application/json"}
    if forged:
        headers["X-Forwarded-For"] = forged
    try:
        connection.request("POST", "/api/v1/conversations/", body=json.dumps({}), headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def server(workdir: Path, *, proxy_headers: bool) -> AsgiServer:
    env = embedded_env(workdir, CONVERSATION_CREATE_RATE="3/hour", EMBEDDED_BEAT="false")
    migrated_sqlite(env, seed=False)
    return AsgiServer(env, log=workdir / "asgi.log", port=free_port(), proxy_headers=proxy_headers)


@pytest.fixture
def direct(tmp_path: Path) -> Iterator[AsgiServer]:
    asgi = server(tmp_path, proxy_headers=False)
    asgi.start()
    yield asgi
    asgi.stop()


@pytest.fixture
def behind_nginx(tmp_path: Path) -> Iterator[NginxServer]:
    asgi = server(tmp_path, proxy_headers=True)
    asgi.start()
    assert asgi.port is not None
    nginx = NginxServer(tmp_path / "nginx", free_port(), [asgi.port, asgi.port])
    nginx.start()
    yield nginx
    nginx.stop()
    asgi.stop()


def test_without_a_proxy_a_forged_header_is_not_an_address(direct):
    assert direct.port is not None
    plain = [post_conversation(direct.port) for _ in range(4)]
    forged = [post_conversation(direct.port, forged=f"10.9.8.{n}") for n in range(3)]
    assert plain == [201, 201, 201, 429]
    assert forged == [429] * 3


def test_behind_nginx_each_client_is_its_own_address_and_cannot_forge_another(behind_nginx):
    port = behind_nginx.port
    assert port is not None
    plain = [post_conversation(port) for _ in range(4)]
    forged = [post_conversation(port, forged=f"10.9.8.{n}") for n in range(3)]
    # Another machine (127.0.0.2 is a different source address) has a budget of its own.
    other = post_conversation(port, source="127.0.0.2")
    assert plain == [201, 201, 201, 429]
    assert forged == [429] * 3
    assert other == 201

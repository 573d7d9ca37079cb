"""Fault: the embedded profile's SQLite is held by another writer (a long write from another
connection, as a backup or a management command would take it).

Injected for real: a second connection to the server's own database file takes the write
lock (`BEGIN IMMEDIATE`) and holds it. Within SQLITE_BUSY_TIMEOUT_SECONDS the chat waits and
then stores the message; past it the chat answers `unavailable` (503 over REST), nothing of
the message or its ticket is written, and the same message sent again is stored once.
"""

import asyncio
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Origin

from tests.integration.customers import http_json
from tests.servers import AsgiServer, embedded_env, migrated_sqlite

pytestmark = [pytest.mark.scale, pytest.mark.timeout(300)]

BUSY_TIMEOUT = 2.0  # the server's SQLITE_BUSY_TIMEOUT_SECONDS in this module


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AsgiServer, Path]]:
    workdir = tmp_path_factory.mktemp("embedded-busy")
    env = embedded_env(
        workdir,
        SQLITE_BUSY_TIMEOUT_SECONDS=str(BUSY_TIMEOUT),
        CHAT_RATE_LIMIT="1000/minute",
        # The sweeps write too; they are not what this test holds the lock against.
        EMBEDDED_BEAT="false",
    )
    migrated_sqlite(env, seed=False)
    server = AsgiServer(env, log=workdir / "asgi.log")
    server.start()
    try:
        yield server, workdir / "db.sqlite3"
    finally:
        server.stop()


@contextmanager
def write_lock_held(database: Path, seconds: float) -> Iterator[None]:
    """Another connection holds SQLite's write lock for `seconds` (in a thread), then commits."""
    taken = threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(database, timeout=30, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("UPDATE django_migrations SET app = app WHERE id = 1")
            taken.set()
            time.sleep(seconds)
            connection.execute("COMMIT")
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(10), "the lock was not taken"
    try:
        yield
    finally:
        thread.join()


def rows(database: Path, sql: str, *params: object) -> list[tuple]:
    connection = sqlite3.connect(database, timeout=30)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


async def hello(server: AsgiServer, conversation: dict):
    ws = await connect(
        server.url.replace("http://", "ws://") + "/ws/chat/", origin=Origin(server.url)
    )
    await ws.send(
        json.dumps(
            {
                "type": "hello",
                "conversation": conversation["id"],
                "token": conversation["token"],
                "last_seq": 0,
            }
        )
    )
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "welcome"
    return ws


async def next_frame(ws, wait: float = 15) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), wait))


async def test_a_message_waits_for_a_short_write_and_is_then_stored(embedded):
    server, database = embedded
    _, conversation = await asyncio.to_thread(
        http_json, "POST", f"{server.url}/api/v1/conversations/", {}
    )
    ws = await hello(server, conversation)
    try:
        client_id = str(uuid.uuid4())
        started = time.monotonic()
        with write_lock_held(database, BUSY_TIMEOUT / 2):
            await ws.send(json.dumps({"type": "message", "client_id": client_id, "text": "hi"}))
            frame = await next_frame(ws)
        waited = time.monotonic() - started
    finally:
        await ws.close()
    assert (frame["type"], frame["client_id"], frame["seq"]) == ("message", client_id, 1)
    # It waited for the other writer rather than failing.
    assert waited >= BUSY_TIMEOUT / 2 * 0.9


async def test_past_the_busy_timeout_the_chat_says_unavailable_and_writes_nothing(embedded):
    server, database = embedded
    _, conversation = await asyncio.to_thread(
        http_json, "POST", f"{server.url}/api/v1/conversations/", {}
    )
    conversation_hex = uuid.UUID(conversation["id"]).hex
    ws = await hello(server, conversation)
    try:
        client_id = str(uuid.uuid4())
        with write_lock_held(database, BUSY_TIMEOUT * 2.5):
            await ws.send(
                json.dumps({"type": "message", "client_id": client_id, "text": "my order"})
            )
            refused = await next_frame(ws)
            # Over REST, in the same outage: 503 in the API's error shape.
            status, body = await asyncio.to_thread(
                http_json,
                "POST",
                f"{server.url}/api/v1/conversations/{conversation['id']}/messages/",
                {"text": "over http", "client_id": str(uuid.uuid4())},
                auth=f"Bearer {conversation['token']}",
            )
        # Nothing half-written: no message, no ticket, no event for this conversation.
        assert rows(
            database,
            "SELECT count(*) FROM chat_message WHERE conversation_id = ?",
            conversation_hex,
        ) == [(0,)]
        assert rows(
            database, "SELECT count(*) FROM chat_ticket WHERE conversation_id = ?", conversation_hex
        ) == [(0,)]
        assert rows(
            database, "SELECT last_seq FROM chat_conversation WHERE id = ?", conversation_hex
        ) == [(0,)]
        # The customer sends it again (the widget does, after retry_after): stored once.
        await ws.send(json.dumps({"type": "message", "client_id": client_id, "text": "my order"}))
        await ws.send(json.dumps({"type": "message", "client_id": client_id, "text": "my order"}))
        stored = await next_frame(ws)
        status_frame = await next_frame(ws)
    finally:
        await ws.close()
    assert refused["type"] == "error"
    assert (refused["code"], refused["client_id"]) == ("unavailable", client_id)
    assert refused["retry_after"] >= 1
    assert status == 503
    assert body["error"]["code"] == "unavailable"
    assert (stored["type"], stored["client_id"], stored["seq"]) == ("message", client_id, 1)
    assert (status_frame["type"], status_frame["status"]) == ("status", "routing")
    assert rows(
        database,
        "SELECT count(*) FROM chat_message WHERE conversation_id = ? AND client_id = ?",
        conversation_hex,
        uuid.UUID(client_id).hex,
    ) == [(1,)]
    log = await asyncio.to_thread(Path(server.log).read_text)
    assert "dependency unavailable in chat frame: OperationalError: database is locked" in log
    assert "Traceback" not in log

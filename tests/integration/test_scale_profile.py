"""The same code on PostgreSQL + Redis with two ASGI processes: events cross processes."""

import asyncio
import json
import urllib.request
import uuid

import pytest
from websockets.asyncio.client import connect

pytestmark = pytest.mark.scale


def http(
    method: str, url: str, body: dict | None = None, token: str | None = None
) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def ws_url(server) -> str:
    return server.url.replace("http://", "ws://") + "/ws/chat/"


async def open_socket(server, conversation: dict, last_seq: int = 0):
    ws = await connect(ws_url(server), origin=server.url)
    await ws.send(
        json.dumps(
            {
                "type": "hello",
                "conversation": conversation["id"],
                "token": conversation["token"],
                "last_seq": last_seq,
            }
        )
    )
    welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert welcome["type"] == "welcome"
    return ws


async def test_message_posted_over_http_on_one_process_reaches_a_socket_on_the_other(scale_cluster):
    a, b = scale_cluster.servers
    status, conversation = await asyncio.to_thread(
        http, "POST", f"{a.url}/api/v1/conversations/", {}
    )
    assert status == 201
    ws = await open_socket(b, conversation)
    try:
        client_id = str(uuid.uuid4())
        status, _ = await asyncio.to_thread(
            http,
            "POST",
            f"{a.url}/api/v1/conversations/{conversation['id']}/messages/",
            {"text": "posted on A", "client_id": client_id},
            conversation["token"],
        )
        assert status == 201
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        status_frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
    finally:
        await ws.close()
    assert (message["type"], message["text"], message["client_id"], message["seq"]) == (
        "message",
        "posted on A",
        client_id,
        1,
    )
    assert (status_frame["type"], status_frame["status"], status_frame["seq"]) == (
        "status",
        "routing",
        2,
    )


async def test_concurrent_senders_on_both_processes_get_unique_consecutive_seqs(scale_cluster):
    a, b = scale_cluster.servers
    _, conversation = await asyncio.to_thread(http, "POST", f"{a.url}/api/v1/conversations/", {})
    sockets = [await open_socket(a, conversation), await open_socket(b, conversation)]
    try:

        async def send_many(ws, label):
            for n in range(15):
                await ws.send(
                    json.dumps(
                        {"type": "message", "client_id": str(uuid.uuid4()), "text": f"{label}-{n}"}
                    )
                )

        await asyncio.gather(send_many(sockets[0], "a"), send_many(sockets[1], "b"))
        # 30 messages + 1 status event; each socket must see every seq exactly once, in order.
        for ws in sockets:
            seqs: list[int] = []
            while len(seqs) < 31:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if "seq" in frame:
                    seqs.append(frame["seq"])
            assert seqs == list(range(1, 32))
    finally:
        for ws in sockets:
            await ws.close()
    _, detail = await asyncio.to_thread(
        http,
        "GET",
        f"{b.url}/api/v1/conversations/{conversation['id']}/",
        None,
        conversation["token"],
    )
    assert len(detail["messages"]) == 30
    # 30 messages and `routing`; the worker may have routed the ticket since (one more status).
    assert detail["last_seq"] in (31, 32)


async def test_resend_of_the_same_client_id_to_the_other_process_is_not_duplicated(scale_cluster):
    a, b = scale_cluster.servers
    _, conversation = await asyncio.to_thread(http, "POST", f"{a.url}/api/v1/conversations/", {})
    body = {"text": "only once", "client_id": str(uuid.uuid4())}
    path = f"/api/v1/conversations/{conversation['id']}/messages/"
    first = await asyncio.to_thread(http, "POST", a.url + path, body, conversation["token"])
    second = await asyncio.to_thread(http, "POST", b.url + path, body, conversation["token"])
    assert (first[0], second[0]) == (201, 200)
    assert first[1]["id"] == second[1]["id"]


async def test_a_celery_worker_routes_the_ticket_and_the_socket_hears_it(scale_cluster):
    a, b = scale_cluster.servers
    _, conversation = await asyncio.to_thread(http, "POST", f"{a.url}/api/v1/conversations/", {})
    ws = await open_socket(b, conversation)
    try:
        await ws.send(
            json.dumps(
                {
                    "type": "message",
                    "client_id": str(uuid.uuid4()),
                    "text": "I forgot my password and the reset email never arrives",
                }
            )
        )
        statuses: list[tuple[str, str | None]] = []
        while len(statuses) < 2:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if frame["type"] == "status":
                statuses.append((frame["status"], frame["pool"]))
    finally:
        await ws.close()
    # Routed in the Celery worker process (local model tier); the event crossed Redis.
    assert statuses == [("routing", None), ("queued", "technical")]


async def test_an_idle_socket_stays_open_past_redis_read_timeouts(scale_cluster):
    # The layer's receive blocks on Redis for 5 s at a time: a socket timeout no longer than
    # that read every quiet moment as an outage and closed every socket of the process.
    a, b = scale_cluster.servers
    _, conversation = await asyncio.to_thread(http, "POST", f"{a.url}/api/v1/conversations/", {})
    ws = await open_socket(a, conversation)
    try:
        await asyncio.sleep(12)
        status, _ = await asyncio.to_thread(
            http,
            "POST",
            f"{b.url}/api/v1/conversations/{conversation['id']}/messages/",
            {"text": "still there?", "client_id": str(uuid.uuid4())},
            conversation["token"],
        )
        assert status == 201
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
    finally:
        await ws.close()
    assert (frame["type"], frame["text"]) == ("message", "still there?")

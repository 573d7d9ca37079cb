"""The desk scaled out: PostgreSQL, Redis, two ASGI processes and a Celery worker. An agent's
desk socket on one process hears a ticket the worker routed and assigned; their reply posted
on the other process reaches the customer live; racing claims on both processes assign once."""

import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request
import uuid

import pytest
from websockets.asyncio.client import connect

from tests.servers import ROOT

pytestmark = pytest.mark.scale

# Runs in a manage.py shell against the cluster's database: a pool reached by a rule, its
# agents (DRF token and a login session each), printed as JSON.
SETUP = """
import json
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from rest_framework.authtoken.models import Token
from apps.orchestrator.models import RoutingRule
from apps.pools.services import pool_membership_set, pool_upsert

SLUG, KEYWORD, AGENTS = {slug!r}, {keyword!r}, {agents!r}
pool = pool_upsert(slug=SLUG, name=SLUG.title(), description="Scale test pool")
RoutingRule.objects.create(name=SLUG, pattern=KEYWORD, pool=pool)
out = {{"pool": pool.pk, "agents": {{}}}}
for username in AGENTS:
    user = get_user_model().objects.create_user(
        username, password="x", is_staff=True, first_name=username.title()
    )
    pool_membership_set(user=user, pools=[pool], capacity=5)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    out["agents"][username] = {{
        "id": user.pk,
        "token": Token.objects.create(user=user).key,
        "session": session.session_key,
    }}
print(json.dumps(out))
"""


def setup_pool(cluster, *, slug: str, keyword: str, agents: list[str]) -> dict:
    code = SETUP.format(slug=slug, keyword=keyword, agents=agents)
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=cluster.env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def http(method: str, url: str, body: dict | None = None, auth: str | None = None):
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = auth
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


async def frames_until(ws, predicate, wait: float = 30) -> dict:
    async with asyncio.timeout(wait):
        while True:
            frame = json.loads(await ws.recv())
            if predicate(frame):
                return frame


async def test_a_worker_assigned_ticket_reaches_the_desk_and_the_reply_reaches_the_customer(
    scale_cluster,
):
    a, b = scale_cluster.servers
    setup = await asyncio.to_thread(
        setup_pool, scale_cluster, slug="zebra", keyword="zebracorn", agents=["zed"]
    )
    zed = setup["agents"]["zed"]
    desk = await connect(
        b.url.replace("http://", "ws://") + "/ws/desk/",
        origin=b.url,
        additional_headers={"Cookie": f"sessionid={zed['session']}"},
    )
    try:
        welcome = await frames_until(desk, lambda f: f["type"] == "welcome", 10)
        assert (welcome["user"]["id"], welcome["presence"]) == (zed["id"], "online")
        status, conversation = await asyncio.to_thread(
            http, "POST", f"{a.url}/api/v1/conversations/", {}
        )
        assert status == 201
        customer = await connect(b.url.replace("http://", "ws://") + "/ws/chat/", origin=b.url)
        await customer.send(
            json.dumps(
                {
                    "type": "hello",
                    "conversation": conversation["id"],
                    "token": conversation["token"],
                }
            )
        )
        await frames_until(customer, lambda f: f["type"] == "welcome", 10)
        await customer.send(
            json.dumps(
                {
                    "type": "message",
                    "client_id": str(uuid.uuid4()),
                    "text": "My zebracorn subscription needs a look",
                }
            )
        )
        # Routed by the rule in the Celery worker, assigned to the online agent (presence is
        # in PostgreSQL), announced through Redis to the desk socket on process B.
        assigned = await frames_until(
            desk, lambda f: f["type"] == "ticket" and f["status"] == "assigned"
        )
        assert assigned["assignee"] == zed["id"]
        assert assigned["pool"] == setup["pool"]
        status_frame = await frames_until(
            customer, lambda f: f["type"] == "status" and f["status"] == "assigned"
        )
        assert (status_frame["pool"], status_frame["agent"]) == ("zebra", "Zed")
        # The reply goes in over REST on process A and reaches the customer's socket on B.
        status, _reply = await asyncio.to_thread(
            http,
            "POST",
            f"{a.url}/api/v1/tickets/{assigned['ticket']}/reply/",
            {"text": "Looking at it now."},
            f"Token {zed['token']}",
        )
        assert status == 201
        message = await frames_until(
            customer, lambda f: f["type"] == "message" and f["sender"] == "agent"
        )
        assert (message["text"], message["author"]) == ("Looking at it now.", "Zed")
        await customer.close()
    finally:
        await desk.close()


async def test_claims_racing_on_both_processes_assign_the_ticket_exactly_once(scale_cluster):
    a, b = scale_cluster.servers
    setup = await asyncio.to_thread(
        setup_pool, scale_cluster, slug="quokka", keyword="quokkaberry", agents=["qa", "qb"]
    )
    status, conversation = await asyncio.to_thread(
        http, "POST", f"{a.url}/api/v1/conversations/", {}
    )
    await asyncio.to_thread(
        http,
        "POST",
        f"{a.url}/api/v1/conversations/{conversation['id']}/messages/",
        {"text": "Quokkaberry order question"},
        f"Bearer {conversation['token']}",
    )
    token_qa = f"Token {setup['agents']['qa']['token']}"
    ticket_id = None
    for _ in range(100):  # routed by the worker; nobody is online, so it waits in the queue
        _, listing = await asyncio.to_thread(
            http, "GET", f"{a.url}/api/v1/tickets/?pool=quokka&status=queued", None, token_qa
        )
        if listing["results"]:
            ticket_id = listing["results"][0]["id"]
            break
        await asyncio.sleep(0.2)
    assert ticket_id is not None

    async def claim(server, agent: str):
        token = f"Token {setup['agents'][agent]['token']}"
        url = f"{server.url}/api/v1/tickets/{ticket_id}/claim/"
        return agent, await asyncio.to_thread(http, "POST", url, None, token)

    results = await asyncio.gather(
        *(claim(server, agent) for server in (a, b) for agent in ("qa", "qb") for _ in range(3))
    )
    _, detail = await asyncio.to_thread(
        http, "GET", f"{b.url}/api/v1/tickets/{ticket_id}/", None, token_qa
    )
    winner = detail["assignee"]["username"]
    assert detail["status"] == "assigned"
    for agent, (status, body) in results:
        if agent == winner:
            assert status == 200
        else:
            assert (status, body["error"]["code"]) == (409, "conflict")
    claims = [a for a in detail["activities"] if a["kind"] == "claimed"]
    assert len(claims) == 1

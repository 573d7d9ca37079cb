"""`make up` and `make down` as a developer runs them: the whole scale-out stack behind nginx.

The real Makefile targets on free ports, checked from outside through nginx: pages, REST, the
chat socket, routing by the Celery worker, round robin to both ASGI processes, a second
`make up` that starts nothing, and a `make down` that stops what was recorded and only that.
"""

import asyncio
import http.cookiejar
import json
import os
import re
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Origin

from scripts.stack import ProcessIdentity, RedisServer, free_ports, port_in_use, service_env
from tests.servers import ROOT

# Setting up the module starts the whole stack (about 15 s; more on a busy machine).
pytestmark = [pytest.mark.scale, pytest.mark.timeout(240)]

DEMO_PASSWORD = "supportdesk-demo"  # seed_demo's demo staff password


@dataclass(frozen=True)
class MadeUp:
    url: str
    asgi_ports: tuple[int, int]
    variables: list[str]
    state_file: Path
    output: str

    def state(self) -> dict:
        return json.loads(self.state_file.read_text())


def make(*args: str) -> subprocess.CompletedProcess[str]:
    # Not os.environ as is: a developer's ANTHROPIC_API_KEY must not reach this stack.
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        env=service_env(os.environ),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def made_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MadeUp]:
    state_file = tmp_path_factory.mktemp("make-up") / "stack.json"
    port, first, second = free_ports(3)
    variables = [f"PORT={port}", f"ASGI_PORTS={first},{second}", f"STACK_STATE={state_file}"]
    up = make("up", *variables)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield MadeUp(f"http://127.0.0.1:{port}", (first, second), variables, state_file, up.stdout)
    finally:
        make("down", *variables)  # "nothing to stop" once the last test has run it


def fetch(url: str, *, opener: urllib.request.OpenerDirector | None = None, **kwargs):
    request = urllib.request.Request(url, **kwargs)
    with (opener or urllib.request.build_opener()).open(request, timeout=10) as response:
        return response.status, response.headers, response.read().decode()


def post_json(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.load(response)


def test_make_up_prints_the_url_pages_logins_logs_and_how_to_stop(made_up):
    out = made_up.output
    assert f"on {made_up.url}" in out
    for path in ("/desk/", "/reports/", "/admin/", "/api/docs/"):
        assert f"{made_up.url}{path}" in out
    assert "agent-billing" in out
    assert DEMO_PASSWORD in out
    for log in made_up.state()["logs"]:
        assert log in out
    assert "make down" in out


def test_pages_and_health_answer_through_nginx(made_up):
    status, _, body = fetch(f"{made_up.url}/healthz")
    assert status == 200
    assert json.loads(body)["status"] == "ok"
    status, _, body = fetch(f"{made_up.url}/")
    assert (status, "supportdesk-widget.js" in body) == (200, True)
    status, _, body = fetch(f"{made_up.url}/api/docs/")
    assert status == 200
    status, _, body = fetch(f"{made_up.url}/desk/")  # redirected to the login page
    assert status == 200
    assert 'name="csrfmiddlewaretoken"' in body


def test_an_agent_logs_in_through_nginx_on_a_port_that_is_not_80(made_up):
    # Django's CSRF check compares the browser's Origin with the Host nginx passes on: the
    # port must be part of it.
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    login = f"{made_up.url}/admin/login/"
    _, _, page = fetch(login, opener=opener)
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match is not None
    form = {
        "csrfmiddlewaretoken": match.group(1),
        "username": "agent-billing",
        "password": DEMO_PASSWORD,
        "next": "/desk/",
    }
    status, _, body = fetch(
        login,
        opener=opener,
        data=urllib.parse.urlencode(form).encode(),
        headers={"Origin": made_up.url, "Referer": login},
        method="POST",
    )
    assert status == 200
    # The desk, signed in: it names the agent (agent-billing is Bea in the demo data).
    assert re.search(r'data-testid="desk-user">Bea\b', body), body[:2000]


async def test_a_socket_message_through_nginx_is_stored_then_routed_by_the_worker(made_up):
    status, conversation = await asyncio.to_thread(
        post_json, f"{made_up.url}/api/v1/conversations/", {}
    )
    assert status == 201
    ws_url = made_up.url.replace("http://", "ws://") + "/ws/chat/"
    async with connect(ws_url, origin=Origin(made_up.url)) as ws:
        hello = {
            "type": "hello",
            "conversation": conversation["id"],
            "token": conversation["token"],
            "last_seq": 0,
        }
        await ws.send(json.dumps(hello))
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert welcome["type"] == "welcome"
        client_id = str(uuid.uuid4())
        text = "I forgot my password and the reset email never arrives"
        await ws.send(json.dumps({"type": "message", "client_id": client_id, "text": text}))
        stored = json.loads(await asyncio.wait_for(ws.recv(), 10))
        statuses: list[tuple[str, str | None]] = []
        while len(statuses) < 2:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if frame["type"] == "status":
                statuses.append((frame["status"], frame["pool"]))
    assert (stored["type"], stored["client_id"], stored["text"], stored["seq"]) == (
        "message",
        client_id,
        text,
        1,
    )
    # Routed in the Celery worker (local model tier); the event came back over Redis.
    assert statuses == [("routing", None), ("queued", "technical")]


def test_nginx_round_robins_requests_to_both_asgi_processes(made_up):
    probe = uuid.uuid4().hex
    request_ids = []
    for n in range(10):
        _, headers, _ = fetch(f"{made_up.url}/healthz?probe={probe}-{n}")
        request_ids.append(headers["X-Request-ID"])
    logs = {
        port: Path(made_up.state()["workdir"], f"asgi-{port}.log") for port in made_up.asgi_ports
    }
    nginx_log = Path(made_up.state()["workdir"], "nginx", "supportdesk.access.log")
    # Both write their line once the response is on its way (nginx's log phase runs after it
    # is sent), so the client may read the tenth answer before its line is written.
    deadline = time.monotonic() + 5.0
    while True:
        served = {port: log.read_text().count(f"probe={probe}-") for port, log in logs.items()}
        access_log = nginx_log.read_text()
        logged = all(f"request_id={request_id} " in access_log for request_id in request_ids)
        if (sum(served.values()) == 10 and logged) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    # Each uvicorn's own access log: every probe was answered once, by both processes.
    assert sum(served.values()) == 10
    assert all(count > 0 for count in served.values()), served
    # The id nginx made is the one the application used (and answered with).
    for request_id in request_ids:
        assert f"request_id={request_id} upstream=127.0.0.1:" in access_log


def test_a_second_make_up_says_already_running_and_starts_nothing(made_up):
    before = made_up.state()
    again = make("up", *made_up.variables)
    assert again.returncode == 0, again.stderr
    assert f"already running at {made_up.url} (make down stops it)" in again.stdout
    assert made_up.state() == before
    first = made_up.asgi_ports[0]
    uvicorns = [
        process
        for process in (
            ProcessIdentity.of(int(pid)) for pid in os.listdir("/proc") if pid.isdigit()
        )
        if process is not None and "uvicorn" in process.cmdline and str(first) in process.cmdline
    ]
    assert len(uvicorns) == 1


# Last in the module: it takes the stack down.
def test_make_down_stops_every_recorded_process_and_nothing_else(made_up):
    bystander = RedisServer()  # the same program as one of the stack's, started by someone else
    bystander.start()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        state = made_up.state()
        recorded = [
            ProcessIdentity(p["pid"], p["started"], tuple(p["cmdline"])) for p in state["processes"]
        ]
        assert len(recorded) == 7
        assert all(process.alive() for process in recorded)
        down = make("down", *made_up.variables)
        assert down.returncode == 0, down.stderr
        assert [process.pid for process in recorded if process.alive()] == []
        assert bystander.alive()
        assert sleeper.poll() is None
        assert not made_up.state_file.exists()
        assert not Path(state["workdir"]).exists()
        assert not port_in_use(int(made_up.url.rsplit(":", 1)[1]))
        assert "nothing to stop" in make("down", *made_up.variables).stdout
    finally:
        bystander.stop()
        sleeper.kill()
        sleeper.wait()

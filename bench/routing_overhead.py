"""Routing overhead: from a customer's first message to its routed `status` frame, minus the
time the model took, with 50 new tickets at once (issue 14: p95 <= 12.5 ms, 5% of 250 ms).

One embedded uvicorn (make run's profile: SQLite, the in-memory channel layer, routing in the
process's background lane) whose model is the Messages API stand-in (tests/fakes/messages_api.py)
on 127.0.0.1, answering every call with a valid `route_ticket` after 0.25 s; the server gets a
fake key and the stand-in's URL, never the caller's ANTHROPIC_* variables. The database is
migrated and seeded (pools, agents) and then every local model version is deactivated, so
every ticket reaches the model: there are no routing rules, and each text is unique (a random
reference of letters, no digits to redact), so neither the rules tier nor the decision cache
answers. The header says how many active rules and models the database holds.

C customers (default 50) in a closed loop, R rounds (default 4): each opens a new conversation
(POST /api/v1/conversations/), opens the socket, says hello, sends its first message, and waits
for the `status` frame whose status is no longer "routing" (queued, in review, awaiting the
customer); then it closes and starts again. The elapsed time runs from the send to that frame.
The stand-in times every request it serves, from the moment it starts reading it to the moment
its answer is written (the 0.25 s sleep included); a ticket's overhead is its elapsed time
minus the stand-in time of the requests that carried its text (more than one if the SDK
retried).

Before the target line it prints what the target asks of such a loop (Little's law): C
customers each waiting (model + overhead) need C / (0.25 s + 12.5 ms) tickets a second, so at
most that many milliseconds of the server's time per new ticket, beside what this run served.

The lane's thread count: ROUTING_THREADS (default 64 here) is passed to the server and printed;
a checkout whose settings do not read it routes in one thread, so 50 tickets queue behind each
other, and the header says so.

    .venv/bin/python bench/routing_overhead.py [--customers 50] [--rounds 4] \
        [--model-ms 250] [--routing-threads 64]
"""

import argparse
import asyncio
import json
import os
import random
import signal
import string
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.typing import Origin

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fakes import messages_api as api
from tests.integration.customers import http_json
from tests.integration.ledger import ledger
from tests.integration.load import percentile
from tests.servers import ROOT, AsgiServer, embedded_env, manage

TARGET_MS = 12.5
SETTLED = ("queued", "assigned", "in_review", "awaiting_customer")
# Every customer comes from 127.0.0.1: no rate limit or per-address bound may refuse the load.
LIFTED = {
    "CHAT_RATE_LIMIT": "1000000/minute",
    "CONVERSATION_CREATE_RATE": "1000000/hour",
    "SOCKET_CONNECT_RATE": "1000000/minute",
    "SOCKETS_PER_ADDRESS_MAX": "100000",
}
STATUS_TIMEOUT_SECONDS = 120.0
# Deactivates the local model; prints what could answer before the model tiers.
PREPARE = (
    "import json; "
    "from apps.orchestrator.models import ModelVersion, RoutingRule; "
    "ModelVersion.objects.update(active=False); "
    "print(json.dumps({'rules': RoutingRule.objects.filter(active=True).count(), "
    "'models': ModelVersion.objects.filter(active=True).count()}))"
)


class _TimedHandler(api._Handler):
    """The stand-in's handler, timed from the start of reading a request to its last byte out."""

    def _handle(self) -> None:
        began = time.perf_counter()
        try:
            super()._handle()
        finally:
            standin = self.server.standin
            assert isinstance(standin, TimedStandIn)
            standin.served(time.perf_counter() - began)


class TimedStandIn(api.MessagesApiStandIn):
    """The Messages API stand-in, recording how long it took over each request it served."""

    def __init__(self) -> None:
        super().__init__()
        self.served_times: list[tuple[bytes, float]] = []  # (request body, seconds)
        self._current = threading.local()
        self._times_lock = threading.Lock()

    def start(self) -> "TimedStandIn":
        super().start()
        assert self._server is not None
        self._server.RequestHandlerClass = _TimedHandler
        return self

    def _answer(self, request: api.RecordedRequest) -> Any:
        self._current.body = request.body  # the handler thread that will time it
        return super()._answer(request)

    def served(self, seconds: float) -> None:
        body = getattr(self._current, "body", b"")
        self._current.body = b""
        with self._times_lock:
            self.served_times.append((body, seconds))

    def seconds_for(self, marker: str) -> tuple[float, int]:
        """Total stand-in time over the requests whose body holds `marker`, and how many."""
        needle = marker.encode()
        with self._times_lock:
            times = [seconds for body, seconds in self.served_times if needle in body]
        return sum(times), len(times)


@dataclass
class Ticket:
    marker: str
    elapsed_ms: float
    status: str


def new_marker() -> str:
    """Letters only: no digit for the redaction to mask, unique so no cache entry matches."""
    return "".join(random.choices(string.ascii_lowercase, k=12))


async def one_ticket(base: str) -> Ticket:
    status, conversation = await asyncio.to_thread(
        http_json, "POST", f"{base}/api/v1/conversations/", {}
    )
    if status != 201:
        raise RuntimeError(f"conversation not opened: {status} {conversation}")
    marker = new_marker()
    async with connect(
        base.replace("http://", "ws://") + "/ws/chat/", origin=Origin(base), open_timeout=60
    ) as ws:
        hello = {
            "type": "hello",
            "conversation": conversation["id"],
            "token": conversation["token"],
            "last_seq": 0,
        }
        await ws.send(json.dumps(hello))
        if json.loads(await ws.recv())["type"] != "welcome":
            raise RuntimeError("hello not welcomed")
        text = f"Hello, something on my account looks odd since this morning, reference {marker}"
        message = {"type": "message", "client_id": str(uuid.uuid4()), "text": text}
        sent = time.perf_counter()
        await ws.send(json.dumps(message))
        async with asyncio.timeout(STATUS_TIMEOUT_SECONDS):
            while True:
                frame = json.loads(await ws.recv())
                if frame.get("type") == "error":
                    raise RuntimeError(f"server refused the message: {frame}")
                if frame.get("type") == "status" and frame.get("status") != "routing":
                    elapsed = (time.perf_counter() - sent) * 1000
                    return Ticket(marker, elapsed, str(frame.get("status")))


async def closed_loop(base: str, customers: int, rounds: int) -> tuple[list[Ticket], float]:
    async def customer() -> list[Ticket]:
        return [await one_ticket(base) for _ in range(rounds)]

    began = time.perf_counter()
    results = await asyncio.gather(*(customer() for _ in range(customers)))
    return [ticket for tickets in results for ticket in tickets], time.perf_counter() - began


def reads_routing_threads() -> bool:
    """Whether this checkout's settings read ROUTING_THREADS (the server runs this checkout)."""
    return "ROUTING_THREADS" in (ROOT / "supportdesk" / "settings" / "base.py").read_text()


def line(name: str, values: list[float]) -> str:
    p50, p95, p99 = (percentile(values, q) for q in (0.5, 0.95, 0.99))
    return f"{name:28} {len(values):>6} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f}"


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=50, help="concurrent new tickets")
    parser.add_argument("--rounds", type=int, default=4, help="tickets per customer")
    parser.add_argument("--model-ms", type=float, default=250, help="the stand-in's answer time")
    parser.add_argument("--routing-threads", type=int, default=64)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sd-routing-"))
    threads_note = (
        f"ROUTING_THREADS={args.routing_threads}"
        if reads_routing_threads()
        else f"ROUTING_THREADS={args.routing_threads} passed, but this checkout's settings do "
        "not read it: routing runs in one thread"
    )
    delay = args.model_ms / 1000
    standin = TimedStandIn()
    with standin:
        standin.default = lambda body: api.delay(delay, api.route_ticket_default(body))
        env = embedded_env(
            workdir,
            **LIFTED,
            ANTHROPIC_API_KEY="bench-key",
            ANTHROPIC_BASE_URL=standin.url,
            ROUTING_THREADS=str(args.routing_threads),
        )
        manage("migrate", "--noinput", env=env)
        manage("seed_demo", env=env)  # pools and agents (and a local model, turned off next)
        tiers = json.loads(manage("shell", "-c", PREPARE, env=env).strip().splitlines()[-1])
        print(
            f"routing overhead: {args.customers} customers in a closed loop x {args.rounds} "
            f"rounds, each a new conversation and its first message to a routed status; one "
            f"embedded uvicorn (SQLite, in-memory layer); the model: the Messages API stand-in "
            f"answering in {args.model_ms:.0f} ms; active rules {tiers['rules']}, active local "
            f"models {tiers['models']}; {threads_note}; {time.strftime('%Y-%m-%d %H:%M')}, "
            f"{os.cpu_count()} cores",
            flush=True,
        )
        server = AsgiServer(env, log=workdir / "asgi.log")
        try:
            server.start()
            tickets, seconds = asyncio.run(closed_loop(server.url, args.customers, args.rounds))
        finally:
            server.stop()
        book = ledger(env)
        model_calls = len(standin.message_requests)
        overheads, model_times, calls_per_ticket = [], [], []
        for ticket in tickets:
            model_s, calls = standin.seconds_for(ticket.marker)
            calls_per_ticket.append(calls)
            model_times.append(model_s * 1000)
            overheads.append(ticket.elapsed_ms - model_s * 1000)
    print(f"{'':28} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    print(line("first message -> routed", [t.elapsed_ms for t in tickets]))
    print(line("stand-in's own time", model_times))
    print(line("routing overhead", overheads))
    statuses: dict[str, int] = {}
    for ticket in tickets:
        statuses[ticket.status] = statuses.get(ticket.status, 0) + 1
    settled = sum(book["by_status"].get(status, 0) for status in SETTLED)
    print(
        f"tickets: sent {len(tickets)} first messages, {len(tickets) / seconds:.1f} tickets/s; "
        f"routed statuses seen {statuses}; in the database {book['tickets']} tickets, "
        f"{settled} settled, {len(book['routing'])} still routing, "
        f"customer messages {book['customer_messages']}, duplicates {book['duplicate_messages']}"
    )
    without = sum(1 for calls in calls_per_ticket if calls == 0)
    print(
        f"model calls the stand-in saw: {model_calls} (decision rows record {book['llm_calls']} "
        f"calls, {book['llm_attempts']} attempts); tickets with no model call: {without}; "
        f"with more than one: {sum(1 for calls in calls_per_ticket if calls > 1)}"
    )
    # Little's law: in a closed loop each of the customers waits for the model and the
    # overhead, so meeting the target takes this throughput, i.e. at most this much of the
    # server's time per ticket (everything a new ticket costs it, one process).
    needed = args.customers / ((args.model_ms + TARGET_MS) / 1000)
    rate = len(tickets) / seconds
    print(
        f"closed loop: {args.customers} customers need {needed:.1f} tickets/s for the target, "
        f"at most {1000 / needed:.2f} ms of the server's time a ticket; this run served "
        f"{rate:.1f} tickets/s, {1000 / rate:.2f} ms a ticket ({needed / rate:.1f} times that)"
    )
    p95 = percentile(overheads, 0.95)
    met = "met" if p95 <= TARGET_MS else "not met"
    print(f"routing overhead p95 = {p95:.1f} ms (target <= {TARGET_MS} ms): {met}")
    print(f"(server log in {workdir})")


if __name__ == "__main__":
    main()

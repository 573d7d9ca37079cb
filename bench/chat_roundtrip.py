"""Chat round trip under load: N customers on WebSockets, against a bare Channels echo.

Each customer opens a conversation, says hello, then sends M messages one after another; the
round trip is from sending a `message` frame to receiving its stored `message` event back (a
database write, the event log, the channel layer). The same run measures a bare echo consumer
(bench/echo_asgi.py) on the same server program, so the ratio between the two is comparable
across noisy machines. After the table come issue 14's target lines, from the rows of this run:

- burst (`--think-ms 0`): chat msg/s as a share of the echo's (target >= 20%);
- paced (`--think-ms` > 0): chat p95 as a multiple of the echo's p95 (target <= 10x).

Then, for each chat row, its first messages apart from the others: each opens a ticket whose
routing runs in the same server meanwhile, and in a paced run they are the chat's tail.

Embedded profile (default): one server process, SQLite, the in-memory channel layer; uvicorn
only unless `--servers uvicorn,daphne` (the choice of server is made: docs/benchmarks.md).

Scale-out profile (`--stack`): the `make up` stack of scripts/stack.py (PostgreSQL, Redis,
uvicorn, a Celery worker and beat, nginx with the shipped site) in a temporary directory, once
with 1 ASGI process behind nginx and once with 2, each started afresh; rows `stack-1asgi` and
`stack-2asgi`, then how throughput grows from one to two. Its echo floor is the echo consumer
under one uvicorn, reached directly (not through nginx), as in the embedded run.

Neither profile is seeded (no pool, no local model, no key): each conversation's first message
opens a ticket that routing sends to review, as before issue 14. Rate limits and per-address
socket bounds are lifted (every customer is 127.0.0.1). No ANTHROPIC_* variable of the caller
reaches a server; traffic goes only to 127.0.0.1.

    .venv/bin/python bench/chat_roundtrip.py [--customers 200] [--messages 5] [--think-ms 0] \
        [--servers uvicorn] [--stack] [--asgi 1,2]
"""

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.typing import Origin

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.integration.load import percentile
from tests.servers import AsgiServer, NginxServer, Stack, embedded_env, manage, service_env

# Every customer comes from 127.0.0.1: no rate limit or per-address bound may refuse the load.
LIFTED = {
    "CHAT_RATE_LIMIT": "100000/minute",
    "CONVERSATION_CREATE_RATE": "100000/hour",
    "SOCKET_CONNECT_RATE": "1000000/minute",
    "SOCKETS_PER_ADDRESS_MAX": "100000",
}
BURST_TARGET = 0.20  # chat msg/s >= 20% of the echo's
PACED_TARGET = 10.0  # chat p95 <= 10x the echo's p95
# A message not back after this long counts as lost (its customer stops sending).
RECEIVE_TIMEOUT_SECONDS = 120.0


def create_conversation(base: str) -> dict:
    request = urllib.request.Request(
        f"{base}/api/v1/conversations/",
        data=b"{}",
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@dataclass
class Tally:
    """One customer's messages: round trips of those that came back, and how many were sent."""

    timings: list[float]  # in the order sent: a customer stops at its first message lost
    sent: int = 0


@dataclass
class Row:
    """One row of the table: a server (or stack) and a path, measured in this run."""

    server: str
    path: str
    timings: list[float]
    seconds: float
    sent: int
    # Each customer's first round trip (a chat's opens its ticket) and the others, apart.
    first: list[float] = field(default_factory=list)
    later: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.timings) / self.seconds if self.seconds else float("nan")

    def p(self, q: float) -> float:
        return percentile(self.timings, q)


async def chat_customer(
    base: str, conversation: dict, messages: int, start: asyncio.Event, think: float
) -> Tally:
    url = base.replace("http://", "ws://") + "/ws/chat/"
    tally = Tally([])
    async with connect(url, origin=Origin(base), open_timeout=60, max_queue=None) as ws:
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
        assert json.loads(await ws.recv())["type"] == "welcome"
        await start.wait()
        await asyncio.sleep(random.uniform(0, think))  # spread paced customers over one period
        for n in range(messages):
            if n:
                await asyncio.sleep(think)
            client_id = str(uuid.uuid4())
            sent = time.perf_counter()
            await ws.send(
                json.dumps(
                    {
                        "type": "message",
                        "client_id": client_id,
                        "text": f"message {n}: my invoice is wrong",
                    }
                )
            )
            tally.sent += 1
            try:
                async with asyncio.timeout(RECEIVE_TIMEOUT_SECONDS):
                    while True:
                        frame = json.loads(await ws.recv())
                        if frame.get("type") == "error":
                            raise RuntimeError(f"server refused a message: {frame}")
                        if frame.get("client_id") == client_id:
                            tally.timings.append((time.perf_counter() - sent) * 1000)
                            break
            except TimeoutError:
                return tally  # counted as lost: sent but never seen back
    return tally


async def echo_customer(base: str, messages: int, start: asyncio.Event, think: float) -> Tally:
    url = base.replace("http://", "ws://") + "/ws/echo/"
    tally = Tally([])
    async with connect(url, origin=Origin(base), open_timeout=60) as ws:
        await start.wait()
        await asyncio.sleep(random.uniform(0, think))
        for n in range(messages):
            if n:
                await asyncio.sleep(think)
            payload = json.dumps(
                {"type": "message", "client_id": str(uuid.uuid4()), "text": f"message {n}"}
            )
            sent = time.perf_counter()
            await ws.send(payload)
            tally.sent += 1
            try:
                async with asyncio.timeout(RECEIVE_TIMEOUT_SECONDS):
                    await ws.recv()
            except TimeoutError:
                return tally
            tally.timings.append((time.perf_counter() - sent) * 1000)
    return tally


async def run_load(
    make_customer: Callable[[asyncio.Event], Coroutine[Any, Any, Tally]], customers: int
) -> tuple[list[Tally], float]:
    start = asyncio.Event()
    tasks = [asyncio.create_task(make_customer(start)) for _ in range(customers)]
    await asyncio.sleep(0.5)  # let every socket connect before the clock starts
    began = time.perf_counter()
    start.set()
    results = await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    return results, elapsed


def tallied_row(name: str, path: str, tallies: list[Tally], elapsed: float) -> Row:
    return Row(
        name,
        path,
        [t for tally in tallies for t in tally.timings],
        elapsed,
        sum(tally.sent for tally in tallies),
        [t for tally in tallies for t in tally.timings[:1]],
        [t for tally in tallies for t in tally.timings[1:]],
    )


def chat_row(name: str, base: str, customers: int, messages: int, think: float) -> Row:
    with ThreadPoolExecutor(16) as pool:
        conversations = list(pool.map(create_conversation, [base] * customers))
    iterator = iter(conversations)
    tallies, elapsed = asyncio.run(
        run_load(
            lambda start: chat_customer(base, next(iterator), messages, start, think), customers
        )
    )
    return tallied_row(name, "chat", tallies, elapsed)


def echo_row(
    name: str, server_name: str, customers: int, messages: int, think: float, workdir: Path
) -> Row:
    echo = AsgiServer(
        embedded_env(workdir),
        log=workdir / f"{name}-echo.log",
        server=server_name,
        app="bench.echo_asgi:application",
        health_path=None,
    )
    try:
        echo.start()
        tallies, elapsed = asyncio.run(
            run_load(lambda start: echo_customer(echo.url, messages, start, think), customers)
        )
    finally:
        echo.stop()
    return tallied_row(name, "echo", tallies, elapsed)


def embedded_rows(
    server_name: str, customers: int, messages: int, think: float, workdir: Path
) -> list[Row]:
    env = embedded_env(workdir, **LIFTED)
    env["SQLITE_PATH"] = str(workdir / f"{server_name}.sqlite3")
    manage("migrate", "--noinput", env=env)
    chat = AsgiServer(env, log=workdir / f"{server_name}-chat.log", server=server_name)
    try:
        chat.start()
        row = chat_row(server_name, chat.url, customers, messages, think)
    finally:
        chat.stop()
    return [row, echo_row(server_name, server_name, customers, messages, think, workdir)]


def scale_stack(workdir: Path, asgi: int) -> Stack:
    """The `make up` stack with `asgi` (1 or 2) uvicorn processes behind nginx, not started."""
    stack = Stack(
        workdir,
        env_base=service_env(os.environ),
        extra_env={**LIFTED, "LOG_LEVEL": "WARNING"},
    )
    if asgi == 1:
        # The shipped site names two upstream servers: both name the one process here.
        stack.servers = stack.servers[:1]
        stack.nginx = NginxServer(workdir / "nginx", stack.port, (stack.asgi_ports[0],) * 2)
    elif asgi != 2:
        raise ValueError("the stack runs 1 or 2 ASGI processes")
    return stack


def stack_row(asgi: int, customers: int, messages: int, think: float, workdir: Path) -> Row:
    stack = scale_stack(workdir / f"stack-{asgi}asgi", asgi)
    with stack:  # stops every process it started, on errors too
        return chat_row(f"stack-{asgi}asgi", stack.url, customers, messages, think)


def print_table(rows: list[Row]) -> None:
    width = max(8, *(len(row.server) for row in rows))
    print(
        f"{'server':{width}} {'path':5} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'msg/s':>8}"
    )
    for row in rows:
        print(
            f"{row.server:{width}} {row.path:5} {len(row.timings):>6} {row.p(0.5):>8.1f} "
            f"{row.p(0.95):>8.1f} {row.p(0.99):>8.1f} {row.rate:>8.0f}"
        )


def target_line(chat: Row, echo: Row, think_ms: float) -> str:
    """Issue 14's target for this run's kind (burst or paced), from two rows of the run."""
    if think_ms == 0:
        share = chat.rate / echo.rate
        met = "met" if share >= BURST_TARGET else "not met"
        return (
            f"burst: chat msg/s = {share:.1%} of echo's (target >= {BURST_TARGET:.0%}): {met} "
            f"[{chat.server} {chat.rate:.0f} vs {echo.server} echo {echo.rate:.0f} msg/s]"
        )
    times = chat.p(0.95) / echo.p(0.95)
    met = "met" if times <= PACED_TARGET else "not met"
    return (
        f"paced: chat p95 = {times:.1f}x echo's p95 (target <= {PACED_TARGET:.0f}x): {met} "
        f"[{chat.server} {chat.p(0.95):.1f} ms vs {echo.server} echo {echo.p(0.95):.1f} ms]"
    )


def opening_line(chat: Row) -> str:
    """The first messages apart from the others: each opens a ticket and starts its routing in
    the same server, so in a paced run they are where the chat's tail comes from."""
    first, later = chat.first, chat.later
    return (
        f"{chat.server} chat: first messages (each opens a ticket, routed meanwhile) p50 "
        f"{percentile(first, 0.5):.1f} / p95 {percentile(first, 0.95):.1f} ms; "
        f"the others p50 {percentile(later, 0.5):.1f} / p95 {percentile(later, 0.95):.1f} ms"
    )


def main() -> None:
    # A plain `kill` unwinds like Ctrl-C: every server started so far is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5, help="messages per customer")
    parser.add_argument(
        "--servers",
        default="uvicorn",
        help="embedded profile: uvicorn, daphne or both (comma-separated)",
    )
    parser.add_argument(
        "--think-ms",
        type=float,
        default=0,
        help="pause between one customer's messages (0: back to back, a burst)",
    )
    parser.add_argument(
        "--stack", action="store_true", help="the scale-out profile (make up) instead"
    )
    parser.add_argument("--asgi", default="1,2", help="with --stack: ASGI processes per run")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sd-bench-"))
    think = args.think_ms / 1000
    profile = (
        "scale-out profile (make up: PostgreSQL, Redis, uvicorn behind nginx, Celery); "
        "echo: one uvicorn, direct"
        if args.stack
        else "embedded profile (SQLite, in-memory layer)"
    )
    print(
        f"chat round trip: {args.customers} concurrent customers x {args.messages} messages, "
        f"{args.think_ms:.0f} ms apart, loopback, {profile}; "
        f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores"
    )
    rows: list[Row] = []
    pairs: list[tuple[Row, Row]] = []
    asgi_counts = [int(n) for n in args.asgi.split(",")]
    if args.stack:
        echo = echo_row("uvicorn", "uvicorn", args.customers, args.messages, think, workdir)
        for asgi in asgi_counts:
            chat = stack_row(asgi, args.customers, args.messages, think, workdir)
            rows.append(chat)
            pairs.append((chat, echo))
        rows.append(echo)
    else:
        for server_name in args.servers.split(","):
            chat, echo = embedded_rows(server_name, args.customers, args.messages, think, workdir)
            rows += [chat, echo]
            pairs.append((chat, echo))
    print_table(rows)
    print(
        "messages: "
        + "; ".join(
            f"{row.server} {row.path} sent {row.sent}, back {len(row.timings)}" for row in rows
        )
    )
    for chat, echo in pairs:
        print(
            f"{chat.server}: chat/echo ratio p50 {chat.p(0.5) / echo.p(0.5):.2f}x, "
            f"p95 {chat.p(0.95) / echo.p(0.95):.2f}x"
        )
    for chat, echo in pairs:
        print(target_line(chat, echo, args.think_ms))
    for row in rows:
        if row.path == "chat" and row.first and row.later:
            print(opening_line(row))
    if args.stack and len(pairs) > 1:
        one, two = pairs[0][0], pairs[1][0]
        note = " (paced: both carry the offered load; compare in a burst)" if think else ""
        print(
            f"throughput from {asgi_counts[0]} to {asgi_counts[1]} ASGI processes: "
            f"{two.rate / one.rate:.2f} times{note}"
        )
    elif len(pairs) > 1:
        (a, _), (b, _) = pairs[:2]
        print(
            f"chat {a.server}/{b.server}: p50 {a.p(0.5) / b.p(0.5):.2f}x, "
            f"p95 {a.p(0.95) / b.p(0.95):.2f}x"
        )
    print(f"(server logs in {workdir}; one run; compare ratios, not absolute figures)")


if __name__ == "__main__":
    main()

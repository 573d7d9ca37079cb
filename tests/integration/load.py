"""Load and soak runs shared by `bench/chat_load.py`, `bench/soak.py` and their short CI
versions (tests/integration/test_load_short.py): the two profiles and their echo floors, the
customers that drive them, and what the kernel says about each server process.

A run measures from each customer's own send (`Customer.sent_at`) to the arrival of the
frames it waits for (`Customer.seen_at`), so a latency is the customer's, not the driver's.
"""

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException
from websockets.typing import Origin

from scripts.stack import child_pids
from tests.integration.customers import (
    SETTLED,
    Customer,
    conversation_open,
    settled,
    wait_until,
)
from tests.integration.scenarios import RunResult, lost_or_duplicated
from tests.servers import (
    AsgiServer,
    NginxServer,
    Stack,
    embedded_env,
    free_ports,
    migrated_sqlite,
    service_env,
)

# Hundreds of customers from one address (127.0.0.1): no rate limit or per-address socket
# bound may refuse the load itself. (Both profiles log at WARNING: embedded_env sets it, the
# stack gets it here.)
LOAD_ENV = {
    "CHAT_RATE_LIMIT": "1000000/minute",
    "CONVERSATION_CREATE_RATE": "1000000/hour",
    "SOCKET_CONNECT_RATE": "1000000/minute",
    "SOCKETS_PER_ADDRESS_MAX": "100000",
}
ECHO_APP = "bench.echo_asgi:application"
# What a soak tolerates between its two snapshots of servers at rest. A few fds and a
# connection may come and go with timing (a beat tick, a pooled Redis connection opened on
# demand); a leak grows with the messages, far beyond these.
FD_TOLERANCE = 10  # per process
PG_CONNECTION_TOLERANCE = 2
RSS_FLAG = 0.10  # growth flagged by bench/soak.py (not asserted: allocators keep what they took)
# Statuses that mean the router put the ticket in a pool's hands.
ROUTED = frozenset({"queued", "assigned"})
# First messages the local tier routes with no API key; the number makes each text unique, so
# no decision cache answers in its place, and gives the refund pool the order number it needs.
FIRST_MESSAGES = (
    "I forgot my password and the reset email never arrives (customer {n})",
    "I was charged twice for my subscription (customer {n})",
    "I want a refund for my broken order #{order}",
)


def first_message(n: int) -> str:
    """Customer `n`'s first message: a ticket the local model routes to a pool."""
    return FIRST_MESSAGES[n % len(FIRST_MESSAGES)].format(n=n, order=10000 + n)


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank `q` quantile of `values` (nan for none)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- Processes --------------------------------------------------------------------------------


TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcessSample:
    """One process as /proc saw it at one moment (None: it had exited)."""

    name: str
    pid: int
    rss_kib: int | None
    fds: int | None
    cpu_s: float | None  # user + system time since it started


def process_sample(name: str, pid: int) -> ProcessSample:
    """VmRSS from /proc/PID/status, the number of entries of /proc/PID/fd and the CPU time
    from /proc/PID/stat."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return ProcessSample(name, pid, None, None, None)
    rss = next(
        (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
    )
    # Fields 14 and 15 (utime, stime), counted after the command name's closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    return ProcessSample(name, pid, rss, fds, (int(fields[11]) + int(fields[12])) / TICKS)


def machine_cpu_s() -> tuple[float, float]:
    """CPU time all cores spent since boot (/proc/stat): busy in all, and of that in interrupt
    handlers (loopback networking's softirqs, charged to no process)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / TICKS, (irq + softirq) / TICKS


def stack_processes(stack: Stack) -> list[tuple[str, int]]:
    """Our processes of the scale-out profile by name, PostgreSQL apart (postgres_processes):
    its backends share one buffer pool, so their RSS would be counted many times over."""
    named: list[tuple[str, int | None]] = [
        *((f"uvicorn :{server.port}", server.pid) for server in stack.servers),
        ("celery worker", stack.worker.pid),
        *((f"worker pool {n}", pid) for n, pid in enumerate(stack.worker.child_pids(), 1)),
        ("celery beat", stack.beat.pid),
        ("nginx master", stack.nginx.pid),
        *((f"nginx worker {n}", pid) for n, pid in enumerate(child_pids(stack.nginx.pid or 0), 1)),
        ("redis", stack.redis.pid),
    ]
    return [(name, pid) for name, pid in named if pid is not None]


def postgres_processes(stack: Stack) -> list[tuple[str, int]]:
    """The postmaster and every backend and helper it forked."""
    postmaster = stack.postgres.pid
    if postmaster is None:
        return []
    return [("postmaster", postmaster), *(("backend", pid) for pid in child_pids(postmaster))]


def pg_connections(database_url: str) -> int:
    """Client connections to the `supportdesk` database, this query's own left out."""
    with psycopg.connect(database_url, connect_timeout=10) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = 'supportdesk' AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(row[0])


@dataclass(frozen=True)
class Snapshot:
    """Every server process of a profile, and PostgreSQL's connections when there is one;
    with the clocks that tell, between two snapshots, who used the machine's CPU."""

    processes: list[ProcessSample]
    postgres: list[ProcessSample] = field(default_factory=list)
    pg_connections: int | None = None
    taken_at: float = field(default_factory=time.monotonic)
    machine_cpu_s: tuple[float, float] = field(default_factory=machine_cpu_s)
    client_cpu_s: float = field(default_factory=time.process_time)  # this process: the customers

    @property
    def rss_kib(self) -> int:
        return sum(sample.rss_kib or 0 for sample in self.processes)

    @property
    def postgres_rss_kib(self) -> int:
        """PostgreSQL's processes summed: an overstatement, as each backend's RSS counts the
        shared buffers it touched (reported apart from ours for that reason)."""
        return sum(sample.rss_kib or 0 for sample in self.postgres)


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds between two snapshots: our servers, PostgreSQL, the customers (this
    process) and every other program, out of what the machine's cores had."""

    servers: float
    postgres: float
    client: float
    interrupts: float
    others: float
    available: float

    @classmethod
    def between(cls, start: Snapshot, end: Snapshot) -> "CpuUse":
        def used(before: list[ProcessSample], after: list[ProcessSample]) -> float:
            # A process started since `before` (a PostgreSQL backend) spent all its CPU in
            # between; one that exited meanwhile is lost to "other programs".
            was = {(s.name, s.pid): s.cpu_s or 0 for s in before}
            return sum((s.cpu_s or 0) - was.get((s.name, s.pid), 0) for s in after)

        servers = used(start.processes, end.processes)
        postgres = used(start.postgres, end.postgres)
        client = end.client_cpu_s - start.client_cpu_s
        busy, interrupts = (
            b - a for a, b in zip(start.machine_cpu_s, end.machine_cpu_s, strict=True)
        )
        return cls(
            servers=servers,
            postgres=postgres,
            client=client,
            interrupts=interrupts,
            others=max(0.0, busy - servers - postgres - client - interrupts),
            available=(os.cpu_count() or 1) * (end.taken_at - start.taken_at),
        )

    def __str__(self) -> str:
        return (
            f"CPU s: servers {self.servers:.1f}, PostgreSQL {self.postgres:.1f}, customers "
            f"{self.client:.1f}, interrupts {self.interrupts:.1f}, other programs "
            f"{self.others:.1f}; {self.available:.1f} available"
        )


# --- Profiles ---------------------------------------------------------------------------------


@dataclass
class Target:
    """A running profile: where customers go and how to look at its processes."""

    url: str
    env: dict[str, str]
    processes: Callable[[], list[tuple[str, int]]]
    stack: Stack | None = None

    def snapshot(self) -> Snapshot:
        """RSS and fds of every process now (taken from a thread: it reads /proc and PG)."""
        samples = [process_sample(name, pid) for name, pid in self.processes()]
        if self.stack is None:
            return Snapshot(samples)
        return Snapshot(
            samples,
            [process_sample(name, pid) for name, pid in postgres_processes(self.stack)],
            pg_connections(self.stack.postgres.url),
        )


@contextmanager
def embedded_target(workdir: Path) -> Iterator[Target]:
    """The embedded profile as `make run` serves it: one uvicorn, SQLite, the in-memory
    channel layer, routing in a background thread of the same process."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = embedded_env(workdir, **LOAD_ENV)
    migrated_sqlite(env, seed=True)  # pools and the local router model
    server = AsgiServer(env, log=workdir / "asgi.log")
    server.start()
    try:
        yield Target(server.url, env, lambda: [("uvicorn", server.pid or 0)])
    finally:
        server.stop()


@contextmanager
def scale_target(
    workdir: Path,
    *,
    worker_concurrency: int = 2,
    template: Path | None = None,
    graceful_timeout: int = 10,
) -> Iterator[Target]:
    """The scale-out profile as `make up` runs it: PostgreSQL, Redis, two uvicorn, a Celery
    worker (2 pool processes unless told) and beat, nginx in front with the shipped site.
    `template`: a migrated and seeded cluster to copy (tests: `migrated_postgres()`);
    `graceful_timeout`: uvicorn's at a stop (`Stack`)."""
    stack = Stack(
        workdir,
        env_base=service_env(os.environ),
        seed=True,
        template=template,
        graceful_timeout=graceful_timeout,
        extra_env={**LOAD_ENV, "LOG_LEVEL": "WARNING"},
        worker_concurrency=worker_concurrency,
    )
    with stack:
        yield Target(stack.url, stack.env, lambda: stack_processes(stack), stack)


@contextmanager
def embedded_echo(workdir: Path) -> Iterator[str]:
    """The echo consumer under one uvicorn: the embedded profile's floor."""
    workdir.mkdir(parents=True, exist_ok=True)
    server = AsgiServer(
        embedded_env(workdir), log=workdir / "echo.log", app=ECHO_APP, health_path=None
    )
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@contextmanager
def scale_echo(workdir: Path) -> Iterator[str]:
    """The echo consumer under two uvicorn processes behind nginx with the shipped site: the
    scale-out profile's floor, every hop of the chat path but the application's own work."""
    workdir.mkdir(parents=True, exist_ok=True)
    port, *upstream = free_ports(3)
    env = embedded_env(workdir)
    servers = [
        AsgiServer(
            env,
            log=workdir / f"echo-{upstream_port}.log",
            port=upstream_port,
            app=ECHO_APP,
            health_path=None,
            proxy_headers=True,
        )
        for upstream_port in upstream
    ]
    nginx = NginxServer(workdir / "nginx", port, upstream)
    try:
        for server in servers:
            server.start()
        nginx.start()
        yield nginx.url
    finally:
        nginx.stop()
        for server in servers:
            server.stop()


# --- Chat load: every customer at once, one first message each ---------------------------------


@dataclass
class ChatLoadResult:
    customers: list[Customer]
    open_failures: int  # conversations that could not be opened over REST
    timeouts: int  # customers whose ticket was not settled by the deadline
    seconds: float  # from the common send to the last settled status

    def _arrival(self, customer: Customer, wanted: Callable[[dict], bool]) -> float | None:
        client_id = next(iter(customer.sent), None)
        sent = customer.sent_at.get(client_id or "")
        if sent is None:
            return None
        seqs = [seq for seq in sorted(customer.events) if wanted(customer.events[seq])]
        return (customer.seen_at[seqs[0]] - sent) * 1000 if seqs else None

    def _latencies(self, wanted: Callable[[Customer], Callable[[dict], bool]]) -> list[float]:
        found = (self._arrival(customer, wanted(customer)) for customer in self.customers)
        return [ms for ms in found if ms is not None]

    @property
    def event_ms(self) -> list[float]:
        """From the send to the customer's own stored `message` event."""
        return self._latencies(
            lambda c: lambda f: f["type"] == "message" and f.get("client_id") in c.sent
        )

    @property
    def settled_ms(self) -> list[float]:
        """From the send to the status that ended routing (queued, assigned, ...)."""
        return self._latencies(lambda c: lambda f: f["type"] == "status" and f["status"] in SETTLED)

    @property
    def final_statuses(self) -> Counter[str]:
        return Counter(c.statuses[-1]["status"] if c.statuses else "none" for c in self.customers)

    @property
    def routed(self) -> int:
        return sum(n for status, n in self.final_statuses.items() if status in ROUTED)

    @property
    def error_frames(self) -> int:
        return sum(len(c.errors) for c in self.customers)

    @property
    def failed_connections(self) -> int:
        """Conversations not opened, and sessions that ended by an error (then resumed)."""
        return self.open_failures + sum(c.drops for c in self.customers)

    @property
    def duplicates(self) -> int:
        return sum(c.duplicates for c in self.customers)


def _sent_and_settled(customer: Customer) -> bool:
    return bool(customer.sent) and settled(customer)


async def _until(predicate: Callable[[], bool], *, deadline: float) -> None:
    """Wait until `predicate` holds or the deadline passes (the run then counts what failed)."""
    with suppress(TimeoutError):
        await asyncio.wait_for(wait_until(predicate), max(0.0, deadline - time.monotonic()))


async def _open(base_url: str, gate: asyncio.Semaphore, *, deadline: float) -> dict:
    async with gate:
        return await conversation_open(base_url, deadline=deadline)


async def chat_load_run(base_url: str, *, customers: int, time_limit: float) -> ChatLoadResult:
    """`customers` customers open a conversation over REST and say hello; once every one is
    welcomed they all send their first message at once and stay until their ticket has left
    routing (reconnecting as the widget does), or the deadline passes."""
    deadline = time.monotonic() + time_limit
    # 32 REST calls in flight: the thread pool behind conversation_open is the real bound.
    gate = asyncio.Semaphore(32)
    opened = await asyncio.gather(
        *(_open(base_url, gate, deadline=deadline) for _ in range(customers)),
        return_exceptions=True,
    )
    crowd = [
        Customer(base_url, conversation)
        for conversation in opened
        if isinstance(conversation, dict)
    ]
    runs = [asyncio.ensure_future(c.run(_sent_and_settled, deadline=deadline)) for c in crowd]
    await _until(
        lambda: all(c.live is not None or run.done() for c, run in zip(crowd, runs, strict=True)),
        deadline=deadline,
    )
    began = time.monotonic()
    for number, customer in enumerate(crowd):
        await customer.send(first_message(number))
    outcomes = await asyncio.gather(*runs, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, TimeoutError):
            raise outcome
    settled_at = [max(c.seen_at.values()) for c in crowd if c.seen_at and settled(c)]
    return ChatLoadResult(
        customers=crowd,
        open_failures=customers - len(crowd),
        timeouts=sum(isinstance(outcome, TimeoutError) for outcome in outcomes),
        seconds=max(settled_at, default=began) - began,
    )


# --- Echo: the same crowd against a bare Channels echo ------------------------------------------


@dataclass
class EchoResult:
    round_trips_ms: list[float]
    failures: int  # connections refused or dropped, echoes not back by the deadline
    seconds: float


async def echo_load_run(base_url: str, *, clients: int, time_limit: float) -> EchoResult:
    """`clients` sockets on /ws/echo/; once all are open each sends one frame of a chat
    message's shape at once and times its echo."""
    deadline = time.monotonic() + time_limit
    url = base_url.replace("http://", "ws://") + "/ws/echo/"
    start = asyncio.Event()
    ready = 0
    timings: list[float] = []

    async def client(n: int) -> None:
        nonlocal ready
        async with connect(url, origin=Origin(base_url), open_timeout=30) as ws:
            ready += 1
            await start.wait()
            payload = (
                f'{{"type": "message", "client_id": "{n:032x}", "text": "{first_message(n)}"}}'
            )
            sent = time.monotonic()
            await ws.send(payload)
            await asyncio.wait_for(ws.recv(), max(0.0, deadline - time.monotonic()))
            timings.append((time.monotonic() - sent) * 1000)

    tasks = [asyncio.ensure_future(client(n)) for n in range(clients)]
    await _until(lambda: ready + sum(task.done() for task in tasks) == clients, deadline=deadline)
    began = time.monotonic()
    start.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    for failure in failures:
        if not isinstance(failure, OSError | TimeoutError | WebSocketException):
            raise failure
    return EchoResult(timings, len(failures), time.monotonic() - began)


# --- Soak: paced customers, counted in and out -------------------------------------------------


@dataclass
class SoakResult:
    customers: list[Customer]
    start: Snapshot  # after the warm-up, every customer away
    end: Snapshot  # after the run, every customer away
    seconds: float  # the run after the warm-up
    open_failures: int
    timeouts: int  # customers who had not got every message stored by the deadline
    warmup_sent: int  # messages sent in the warm-up

    async def catch_up(self) -> None:
        """Every customer reads up to its conversation's latest event, as an open widget
        would have by now (before comparing with the ledger)."""
        await asyncio.gather(*(customer.catch_up() for customer in self.customers))

    @property
    def duplicates(self) -> int:
        return sum(c.duplicates for c in self.customers)

    def rss_changes(self) -> dict[str, float | None]:
        """Each of our processes' RSS growth from start to end (None: exited or replaced)."""
        ended = {(s.name, s.pid): s for s in self.end.processes}
        changes: dict[str, float | None] = {}
        for before in self.start.processes:
            after = ended.get((before.name, before.pid))
            if after is None or not before.rss_kib or after.rss_kib is None:
                changes[before.name] = None
            else:
                changes[before.name] = (after.rss_kib - before.rss_kib) / before.rss_kib
        return changes

    @property
    def round_trips_ms(self) -> list[float]:
        """From each send to its stored `message` event."""
        return [
            (c.seen_at[seq] - c.sent_at[frame["client_id"]]) * 1000
            for c in self.customers
            for seq, frame in c.events.items()
            if frame["type"] == "message" and frame.get("client_id") in c.sent_at
        ]

    @property
    def sent(self) -> int:
        return sum(len(c.sent) for c in self.customers)

    @property
    def seen(self) -> int:
        """The customers' own messages that came back to them as stored events."""
        return sum(
            1
            for c in self.customers
            for frame in c.events.values()
            if frame["type"] == "message" and frame.get("client_id") in c.sent
        )


async def _paced(customer: Customer, texts: list[str], *, think: float, deadline: float) -> None:
    """Send `texts` one at a time: the next once the previous came back stored, after a think
    time around `think` seconds (uniform in ±50%, so customers do not fall into step); leave
    once the last is stored and the ticket has left routing. Customers arrive spread over one
    think time: a crowd reconnecting in the same instant would measure the storm instead."""
    await asyncio.sleep(random.uniform(0, think))
    target = len(customer.sent) + len(texts)
    runner = asyncio.ensure_future(
        customer.run(lambda c: len(c.sent) >= target and settled(c), deadline=deadline)
    )
    try:
        for n, text in enumerate(texts):
            if n:
                await asyncio.sleep(think * random.uniform(0.5, 1.5))
            client_id = await customer.send(text)
            await customer.stored(client_id, deadline=deadline)
    except BaseException:
        runner.cancel()
        raise
    await runner


async def soak_run(
    base_url: str,
    *,
    customers: int,
    messages: int,
    warmup: int,
    think: float,
    time_limit: float,
    snapshot: Callable[[], Snapshot],
    settle: float = 2.0,
) -> SoakResult:
    """`customers` customers send `messages` messages in all, paced. Each first sends `warmup`
    messages (its first opens and routes a ticket) and leaves once its ticket is routed, so no
    routing is left for the run; `snapshot` is taken `settle` seconds later. Then each comes
    back (hello with its last_seq) for the rest and leaves; the second snapshot is taken
    `settle` seconds after that. Both are of servers at rest with the same customers known,
    so growth between them is what the run left behind."""
    deadline = time.monotonic() + time_limit
    per_customer = messages // customers
    if per_customer * customers != messages or not 0 < warmup < per_customer:
        raise ValueError(f"{messages} messages do not split into {customers} paced customers")
    gate = asyncio.Semaphore(32)
    opened = await asyncio.gather(
        *(_open(base_url, gate, deadline=deadline) for _ in range(customers)),
        return_exceptions=True,
    )
    crowd = [
        Customer(base_url, conversation)
        for conversation in opened
        if isinstance(conversation, dict)
    ]
    texts = [
        [first_message(number)]
        + [f"Message {k} from customer {number}: any news?" for k in range(2, per_customer + 1)]
        for number in range(len(crowd))
    ]

    timed_out: set[int] = set()

    async def phase(part: slice) -> None:
        active = [n for n in range(len(crowd)) if n not in timed_out]
        outcomes = await asyncio.gather(
            *(_paced(crowd[n], texts[n][part], think=think, deadline=deadline) for n in active),
            return_exceptions=True,
        )
        for n, outcome in zip(active, outcomes, strict=True):
            if isinstance(outcome, TimeoutError):
                timed_out.add(n)
            elif isinstance(outcome, BaseException):
                raise outcome
        await asyncio.sleep(settle)

    await phase(slice(0, warmup))
    warmup_sent = sum(len(c.sent) for c in crowd)
    start = await asyncio.to_thread(snapshot)
    began = time.monotonic()
    await phase(slice(warmup, None))
    seconds = time.monotonic() - began - settle
    end = await asyncio.to_thread(snapshot)
    return SoakResult(
        crowd, start, end, seconds, customers - len(crowd), len(timed_out), warmup_sent
    )


def soak_counts(result: SoakResult, book: dict) -> dict[str, int]:
    """Messages in (sent) and out (stored in the soak's conversations, seen by customers)."""
    stored = sum(
        len(book["customer_client_ids"].get(c.conversation["id"].replace("-", ""), []))
        for c in result.customers
    )
    return {
        "sent": result.sent,
        "stored": stored,
        "seen": result.seen,
        "after_warmup": result.sent - result.warmup_sent,
    }


def soak_breaches(result: SoakResult, book: dict) -> dict[str, Any]:
    """Every breach of what a soak must show, by kind (empty: none): counts in = out, nothing
    lost or twice, and no fd or PostgreSQL connection growth beyond the tolerances. Call
    after `result.catch_up()`, with the ledger read after the run."""
    breaches = lost_or_duplicated(RunResult(result.customers, book, result.seconds))
    counts = soak_counts(result, book)
    if not counts["sent"] == counts["stored"] == counts["seen"]:
        breaches["counts"] = counts
    if result.timeouts or result.open_failures:
        breaches["customers_failed"] = {
            "timeouts": result.timeouts,
            "not_opened": result.open_failures,
        }
    ended = {(s.name, s.pid): s for s in result.end.processes}
    replaced = [s.name for s in result.start.processes if (s.name, s.pid) not in ended]
    if replaced:
        breaches["processes_replaced"] = replaced
    fd_growth = {
        before.name: (before.fds, after.fds)
        for before in result.start.processes
        if (after := ended.get((before.name, before.pid))) is not None
        and (after.fds or 0) - (before.fds or 0) > FD_TOLERANCE
    }
    if fd_growth:
        breaches["fd_growth"] = fd_growth
    connections = (result.start.pg_connections or 0, result.end.pg_connections or 0)
    if connections[1] - connections[0] > PG_CONNECTION_TOLERANCE:
        breaches["pg_connection_growth"] = connections
    return breaches

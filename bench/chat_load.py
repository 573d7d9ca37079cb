"""Chat under load, the whole path: N customers at once, each to a routed ticket.

Each customer opens a conversation over REST (through nginx on the scale-out profile) and says
hello; once every one is welcomed they all send their first message at once (a burst) and stay
until their ticket has left routing. From each customer's own send it times (a) its stored
`message` event and (b) the status that ended routing (queued, with the local tier; no API key
reaches the servers, so the LLM tiers are skipped). Per profile and crowd size it prints
p50/p95/p99 of both, routed tickets per second (routed / time from the send to the last
settled status), errors (error frames, failed connections, timeouts), the RSS of every server
process before and after (VmRSS), and the ratio to a bare Channels echo measured in the same
run on the same shape of servers, so a noisy machine still compares like with like:

- embedded: one uvicorn, SQLite, in-memory channel layer, routing in a background thread
  (`make run`); echo: the echo consumer under one uvicorn.
- scale: PostgreSQL, Redis, two uvicorn, a Celery worker (2 pool processes, or
  --worker-concurrency) and beat, nginx
  with deploy/nginx/supportdesk.conf (`make up`); echo: two uvicorn echo processes behind an
  nginx running the same site file.

Every run starts its servers afresh (echo first, then the profile), warms them with 8
customers, and stops them; traffic goes to 127.0.0.1 only.

    .venv/bin/python bench/chat_load.py [--customers 200,500] [--profiles embedded,scale] \
        [--quick] [--time-limit 300] [--worker-concurrency 2]

`--quick` is the CI size (30 customers), to try the command in a minute.
"""

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.integration.load import (
    ChatLoadResult,
    CpuUse,
    EchoResult,
    Snapshot,
    chat_load_run,
    echo_load_run,
    embedded_echo,
    embedded_target,
    percentile,
    scale_echo,
    scale_target,
)

PROFILES = ("embedded", "scale")
WARMUP_CUSTOMERS = 8  # loads the router model in every process that routes
QUICK_CUSTOMERS = 30
MIB = 1024


@dataclass
class Run:
    profile: str
    customers: int
    chat: ChatLoadResult
    echo: EchoResult
    start: Snapshot
    end: Snapshot

    @property
    def errors(self) -> tuple[int, int, int]:
        return self.chat.error_frames, self.chat.failed_connections, self.chat.timeouts

    @property
    def cpu(self) -> CpuUse:
        return CpuUse.between(self.start, self.end)

    def ratio(self, q: float) -> float:
        return percentile(self.chat.event_ms, q) / percentile(self.echo.round_trips_ms, q)


def measure(
    profile: str, customers: int, time_limit: float, workdir: Path, worker_concurrency: int
) -> Run:
    if profile == "embedded":
        start_echo, start_target = embedded_echo, embedded_target
    else:
        start_echo = scale_echo
        start_target = partial(scale_target, worker_concurrency=worker_concurrency)
    with start_echo(workdir / "echo") as echo_url:
        asyncio.run(echo_load_run(echo_url, clients=WARMUP_CUSTOMERS, time_limit=time_limit))
        echo = asyncio.run(echo_load_run(echo_url, clients=customers, time_limit=time_limit))
    with start_target(workdir / "chat") as target:
        asyncio.run(chat_load_run(target.url, customers=WARMUP_CUSTOMERS, time_limit=time_limit))
        start = target.snapshot()
        chat = asyncio.run(chat_load_run(target.url, customers=customers, time_limit=time_limit))
        end = target.snapshot()
    return Run(profile, customers, chat, echo, start, end)


def print_latencies(runs: list[Run]) -> None:
    print(
        f"{'profile':9} {'customers':>9} {'path':14} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p99 ms':>8} {'tickets/s':>9} {'errors f/c/t':>12}"
    )
    for run in runs:
        routed_rate = run.chat.routed / run.chat.seconds if run.chat.seconds else 0.0
        rows = (
            ("message event", run.chat.event_ms, "", ""),
            (
                "routed status",
                run.chat.settled_ms,
                f"{routed_rate:.1f}",
                "/".join(map(str, run.errors)),
            ),
            ("echo", run.echo.round_trips_ms, "", str(run.echo.failures)),
        )
        for path, timings, rate, errors in rows:
            p50, p95, p99 = (percentile(timings, q) for q in (0.5, 0.95, 0.99))
            row = (
                f"{run.profile:9} {run.customers:>9} {path:14} {len(timings):>5} {p50:>8.1f} "
                f"{p95:>8.1f} {p99:>8.1f} {rate:>9} {errors:>12}"
            )
            print(row.rstrip())


def print_memory(runs: list[Run]) -> None:
    print(
        f"{'profile':9} {'customers':>9} {'process':16} {'pid':>7} "
        f"{'RSS start MiB':>13} {'RSS end MiB':>11} {'change':>7} {'CPU s':>6}"
    )
    for run in runs:
        ended = {(sample.name, sample.pid): sample for sample in run.end.processes}
        for before in run.start.processes:
            after = ended.get((before.name, before.pid))
            if after is None or after.rss_kib is None:
                print_row(run, before.name, str(before.pid), before.rss_kib, None, None)
                continue
            cpu = (after.cpu_s or 0) - (before.cpu_s or 0)
            print_row(run, before.name, str(before.pid), before.rss_kib, after.rss_kib, cpu)
        cpu_use = run.cpu
        print_row(run, "sum", "", run.start.rss_kib, run.end.rss_kib, cpu_use.servers)
        if run.start.postgres:
            # Apart: every backend maps the same shared buffers, so this sum overstates.
            print_row(
                run,
                f"postgres ({len(run.end.postgres)})",
                "",
                run.start.postgres_rss_kib,
                run.end.postgres_rss_kib,
                cpu_use.postgres,
            )
    print()
    for run in runs:
        print(f"{run.profile} {run.customers}: {run.cpu}")


def print_row(
    run: Run, name: str, pid: str, start: int | None, end: int | None, cpu: float | None
) -> None:
    start_text = "-" if start is None else f"{start / MIB:.1f}"
    end_text = "-" if end is None else f"{end / MIB:.1f}"
    change = "exited" if start is None or end is None else f"{(end - start) / start:+.1%}"
    cpu_text = "-" if cpu is None else f"{cpu:.1f}"
    print(
        f"{run.profile:9} {run.customers:>9} {name:16} {pid:>7} "
        f"{start_text:>13} {end_text:>11} {change:>7} {cpu_text:>6}"
    )


def summary(profile: str, runs: list[Run]) -> str:
    parts = []
    for run in runs:
        chat = run.chat
        rate = chat.routed / chat.seconds if chat.seconds else 0.0
        parts.append(
            f"{run.customers} customers: {chat.routed}/{run.customers} routed in "
            f"{chat.seconds:.1f} s ({rate:.1f} tickets/s), routed p95 "
            f"{percentile(chat.settled_ms, 0.95) / 1000:.2f} s, errors {sum(run.errors)}, "
            f"chat/echo p50 {run.ratio(0.5):.1f}x p95 {run.ratio(0.95):.1f}x, "
            f"servers' CPU {run.cpu.servers + run.cpu.postgres:.1f} s "
            f"({(run.cpu.servers + run.cpu.postgres) / max(chat.routed, 1) * 1000:.0f} ms a "
            f"ticket), RSS {run.start.rss_kib / MIB:.0f} -> {run.end.rss_kib / MIB:.0f} MiB"
        )
        if run.start.pg_connections is not None:
            parts[-1] += (
                f", PostgreSQL connections {run.start.pg_connections} -> {run.end.pg_connections}"
            )
    return f"{profile}: " + "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", default="200,500", help="crowd sizes, comma-separated")
    parser.add_argument("--profiles", default="embedded,scale", help="embedded, scale or both")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_CUSTOMERS} customers")
    parser.add_argument(
        "--time-limit", type=float, default=300, help="seconds a run may take before it stops"
    )
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        default=2,
        help="pool processes of the scale-out profile's Celery worker (2, as make up)",
    )
    args = parser.parse_args()
    sizes = [QUICK_CUSTOMERS] if args.quick else [int(n) for n in args.customers.split(",")]
    profiles = args.profiles.split(",")
    unknown = set(profiles) - set(PROFILES)
    if unknown:
        parser.error(f"unknown profiles {sorted(unknown)}: choose from {sorted(PROFILES)}")
    workdir = Path(tempfile.mkdtemp(prefix="sd-chat-load-"))
    print(
        f"chat load: {','.join(map(str, sizes))} customers at once, one first message each, "
        f"to a routed ticket (local tier); scale-out worker concurrency "
        f"{args.worker_concurrency}; {time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}, "
        "client and servers on one machine"
    )
    runs: list[Run] = []
    for profile in profiles:
        for size in sizes:
            runs.append(
                measure(
                    profile,
                    size,
                    args.time_limit,
                    workdir / f"{profile}-{size}",
                    args.worker_concurrency,
                )
            )
    print()
    print_latencies(runs)
    print()
    print_memory(runs)
    print()
    for profile in profiles:
        print(summary(profile, [run for run in runs if run.profile == profile]))
    print(
        "(errors f/c/t: error frames / failed connections / timeouts of the chat; "
        f"echo: sockets that failed; logs in {workdir})"
    )


if __name__ == "__main__":
    main()

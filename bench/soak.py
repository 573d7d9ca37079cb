"""Soak: 10,000 customer messages on the scale-out profile, counted in and out, with every
server process's memory, file descriptors and PostgreSQL connections before and after.

200 customers each send 50 messages, paced as people chat: the next message once the previous
one has come back as a stored event, after a think time of 2 s ±50%. That offers about 90
messages/s, which kept the 2-core development machine (client and servers sharing it) under
half busy: the servers spend about 8 ms of CPU on a message. A soak looks for what accumulates
at a steady load with headroom, not for the limit, where queues grow for their own reason
(with 1 s of think time the cores were three-quarters busy and p95 rose to 2.8 s). Each
customer's first message opens and routes a ticket.

The first 2 messages of every customer are the warm-up (every ticket routed, the model loaded,
connection pools grown); the customers leave once their ticket is routed, and the first
snapshot is taken of the servers at rest. They come back, spread over one think time (hello
with their last_seq, as the widget reconnects), for the other 48 messages and leave again; the
second snapshot is taken at rest too. Growth between the two is what the run left behind: RSS
(flagged above 10%), open fds (/proc/PID/fd) of each of our processes, and PostgreSQL
connections to the `supportdesk` database. PostgreSQL's own
processes are reported apart (their RSS counts the shared buffer pool once per backend).

Afterwards: messages sent = stored (the database's ledger) = message events the customers saw,
no duplicate stored or seen, no gap in any conversation's event log, and every customer saw
every event of their conversation.

    .venv/bin/python bench/soak.py [--messages 10000] [--customers 200] [--think-ms 2000] \
        [--warmup 2] [--time-limit 1800]
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.integration.ledger import ledger
from tests.integration.load import (
    FD_TOLERANCE,
    PG_CONNECTION_TOLERANCE,
    RSS_FLAG,
    CpuUse,
    ProcessSample,
    percentile,
    scale_target,
    soak_breaches,
    soak_counts,
    soak_run,
)

MIB = 1024


def print_processes(start: list[ProcessSample], end: list[ProcessSample]) -> None:
    ended = {(sample.name, sample.pid): sample for sample in end}
    for before in start:
        after = ended.get((before.name, before.pid))
        if after is None or before.rss_kib is None or after.rss_kib is None:
            print(f"{before.name:18} {before.pid:>7}  exited or replaced during the run")
            continue
        change = (after.rss_kib - before.rss_kib) / before.rss_kib
        flag = "  > 10%" if change > RSS_FLAG else ""
        cpu = (after.cpu_s or 0) - (before.cpu_s or 0)
        print(
            f"{before.name:18} {before.pid:>7} {before.rss_kib / MIB:>10.1f} "
            f"{after.rss_kib / MIB:>10.1f} {change:>+8.1%} {before.fds:>9} {after.fds:>7} "
            f"{cpu:>6.1f}{flag}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000, help="messages in all")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=2, help="warm-up messages per customer")
    parser.add_argument("--think-ms", type=float, default=2000, help="mean pause per customer")
    parser.add_argument("--time-limit", type=float, default=1800, help="seconds before it stops")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sd-soak-"))
    per_customer = args.messages // args.customers
    print(
        f"soak: {args.customers} customers x {per_customer} messages "
        f"({args.warmup} warm-up each), think {args.think_ms:.0f} ms ±50%, scale-out profile "
        f"(2 uvicorn, worker with 2 pool processes, beat, nginx, Redis, PostgreSQL); "
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, client and servers on one machine"
    )
    with scale_target(workdir) as target:
        began = time.monotonic()
        result = asyncio.run(
            soak_run(
                target.url,
                customers=args.customers,
                messages=args.messages,
                warmup=args.warmup,
                think=args.think_ms / 1000,
                time_limit=args.time_limit,
                snapshot=target.snapshot,
            )
        )
        book = ledger(target.env)
        asyncio.run(result.catch_up())
        total = time.monotonic() - began
    counts = soak_counts(result, book)
    breaches = soak_breaches(result, book)
    timings = result.round_trips_ms
    print()
    print(
        f"{'process':18} {'pid':>7} {'RSS start':>10} {'RSS end':>10} {'change':>8} "
        f"{'fds start':>9} {'fds end':>7} {'CPU s':>6}"
    )
    print(f"{'':18} {'':>7} {'MiB':>10} {'MiB':>10}")
    print_processes(result.start.processes, result.end.processes)
    start_sum, end_sum = result.start.rss_kib, result.end.rss_kib
    cpu = CpuUse.between(result.start, result.end)
    print(
        f"{'sum (ours)':18} {'':>7} {start_sum / MIB:>10.1f} {end_sum / MIB:>10.1f} "
        f"{(end_sum - start_sum) / start_sum:>+8.1%} {'':>9} {'':>7} {cpu.servers:>6.1f}"
    )
    pg_start, pg_end = result.start.postgres_rss_kib, result.end.postgres_rss_kib
    print(
        f"PostgreSQL apart: {len(result.start.postgres)} -> {len(result.end.postgres)} processes, "
        f"RSS sum {pg_start / MIB:.0f} -> {pg_end / MIB:.0f} MiB; connections to supportdesk "
        f"{result.start.pg_connections} -> {result.end.pg_connections}"
    )
    print(
        f"{cpu} (after the warm-up; servers and PostgreSQL "
        f"{(cpu.servers + cpu.postgres) / max(counts['after_warmup'], 1) * 1000:.1f} ms a message)"
    )
    print()
    print(
        f"messages: sent {counts['sent']}, stored {counts['stored']}, seen by their customers "
        f"{counts['seen']}; duplicates stored {book['duplicate_messages']}, seen "
        f"{result.duplicates}; conversations with event gaps {len(book['event_gaps'])}; "
        f"timeouts {result.timeouts}, conversations not opened {result.open_failures}"
    )
    print(
        f"message -> stored event: p50 {percentile(timings, 0.5):.1f} ms, p95 "
        f"{percentile(timings, 0.95):.1f} ms, p99 {percentile(timings, 0.99):.1f} ms; after the "
        f"warm-up {counts['after_warmup']} messages in {result.seconds:.1f} s "
        f"({counts['after_warmup'] / result.seconds:.0f} msg/s); whole run {total:.0f} s"
    )
    rss_flags = [
        name
        for name, change in result.rss_changes().items()
        if change is not None and change > RSS_FLAG
    ]
    if breaches:
        verdict = "FAIL: " + "; ".join(f"{kind} {found}" for kind, found in breaches.items())
    else:
        verdict = (
            f"PASS: in = out ({counts['sent']}), no duplicate, no gap; fds within "
            f"+{FD_TOLERANCE} per process, PostgreSQL connections within "
            f"+{PG_CONNECTION_TOLERANCE}"
        )
    rss_note = f"RSS grew > 10%: {', '.join(rss_flags)}" if rss_flags else "no RSS grew > 10%"
    print(f"verdict: {verdict}; {rss_note}")
    print(f"(logs in {workdir})")


if __name__ == "__main__":
    main()

"""Memory of the chat server: its RSS after 1,000 customer messages and after 10,000.

One embedded server as `make run` serves it (uvicorn, SQLite, the in-memory channel layer,
routing in a thread; seeded: pools and the local model). N customers open a conversation and a
WebSocket each, say hello, and stay connected for the whole run; they send their messages back
to back (the next once the previous came back as a stored event), first until 1,000 messages
are stored, then until 10,000. After each phase the server rests for `--settle` seconds
(routing and desk work finish) and its RSS is read from /proc/PID/status (VmRSS of the uvicorn
process). Issue 14's target: RSS after 10,000 within 10% of RSS after 1,000 (ratio <= 1.10).

Rate limits are lifted (every customer is 127.0.0.1); no ANTHROPIC_* variable of the caller
reaches the server, so the local tier routes.

    .venv/bin/python bench/chat_memory.py [--customers 50] [--first 1000] [--total 10000] \
        [--settle 3]
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.integration.customers import http_json
from tests.integration.load import embedded_target, percentile

TARGET = 1.10
RECEIVE_TIMEOUT_SECONDS = 120.0


def rss_kib(pid: int) -> int:
    """VmRSS of `pid` in KiB, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Counts:
    def __init__(self) -> None:
        self.sent = 0
        self.back = 0
        self.timings: list[float] = []


async def open_customer(base: str) -> ClientConnection:
    status, conversation = await asyncio.to_thread(
        http_json, "POST", f"{base}/api/v1/conversations/", {}
    )
    if status != 201:
        raise RuntimeError(f"conversation not opened: {status} {conversation}")
    ws = await connect(
        base.replace("http://", "ws://") + "/ws/chat/",
        origin=Origin(base),
        open_timeout=60,
        max_queue=None,
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
    if json.loads(await ws.recv())["type"] != "welcome":
        raise RuntimeError("hello not welcomed")
    return ws


async def send_messages(ws: ClientConnection, count: int, counts: Counts, offset: int) -> None:
    for n in range(offset, offset + count):
        client_id = str(uuid.uuid4())
        sent = time.perf_counter()
        await ws.send(
            json.dumps({"type": "message", "client_id": client_id, "text": f"message {n}: thanks"})
        )
        counts.sent += 1
        async with asyncio.timeout(RECEIVE_TIMEOUT_SECONDS):
            while True:
                frame = json.loads(await ws.recv())
                if frame.get("type") == "error":
                    raise RuntimeError(f"server refused a message: {frame}")
                if frame.get("client_id") == client_id:
                    counts.back += 1
                    counts.timings.append((time.perf_counter() - sent) * 1000)
                    break


async def run(base: str, pid: int, customers: int, phases: list[int], settle: float) -> None:
    sockets = [await open_customer(base) for _ in range(customers)]
    counts = Counts()
    readings: list[tuple[int, int]] = []
    done = 0
    try:
        for target in phases:
            per_customer = (target - done) // customers
            extra = (target - done) % customers
            began = time.perf_counter()
            counts.timings = []
            await asyncio.gather(
                *(
                    send_messages(ws, per_customer + (i < extra), counts, done)
                    for i, ws in enumerate(sockets)
                )
            )
            seconds = time.perf_counter() - began
            done = counts.back
            await asyncio.sleep(settle)
            readings.append((done, rss_kib(pid)))
            print(
                f"after {done:>6} messages: RSS {readings[-1][1] / 1024:7.1f} MiB "
                f"(this phase {len(counts.timings)} messages in {seconds:.1f} s, "
                f"p50 {percentile(counts.timings, 0.5):.1f} ms, "
                f"p95 {percentile(counts.timings, 0.95):.1f} ms)",
                flush=True,
            )
    finally:
        for ws in sockets:
            await ws.close()
    print(f"messages: sent {counts.sent}, stored and seen back {counts.back}")
    (first_n, first_rss), (last_n, last_rss) = readings[0], readings[-1]
    ratio = last_rss / first_rss
    met = "met" if ratio <= TARGET else "not met"
    print(
        f"memory: RSS after {last_n:,} messages = {ratio:.3f}x RSS after {first_n:,} "
        f"({last_rss / 1024:.1f} / {first_rss / 1024:.1f} MiB; target <= {TARGET:.2f}): {met}"
    )


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--first", type=int, default=1000, help="messages at the first reading")
    parser.add_argument("--total", type=int, default=10000, help="messages at the last reading")
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds at rest before a reading"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sd-memory-"))
    print(
        f"chat memory: {args.customers} customers on one embedded uvicorn (SQLite, in-memory "
        f"layer, seeded), messages back to back; RSS (VmRSS) at rest after {args.first:,} and "
        f"{args.total:,} messages; {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores"
    )
    with embedded_target(workdir) as target:
        (_, pid), *_ = target.processes()
        print(f"uvicorn pid {pid}: RSS {rss_kib(pid) / 1024:.1f} MiB after start")
        asyncio.run(run(target.url, pid, args.customers, [args.first, args.total], args.settle))
    print(f"(server log in {workdir})")


if __name__ == "__main__":
    main()

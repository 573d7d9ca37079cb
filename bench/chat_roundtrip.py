"""Chat round trip under load: N customers on WebSockets, against a bare Channels echo.

Each customer opens a conversation, says hello, then sends M messages one after another; the
round trip is from sending a `message` frame to receiving its stored `message` event back (a
SQLite write, the event log, the channel layer). The same run measures a bare echo consumer on
the same server program, so the ratio between the two is comparable across noisy machines.

    .venv/bin/python bench/chat_roundtrip.py [--customers 200] [--messages 5] \
        [--servers uvicorn,daphne]
"""

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.typing import Origin

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.servers import AsgiServer, embedded_env, manage


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def create_conversation(base: str) -> dict:
    request = urllib.request.Request(
        f"{base}/api/v1/conversations/",
        data=b"{}",
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


async def chat_customer(
    server: AsgiServer, conversation: dict, messages: int, start: asyncio.Event, think: float
) -> list[float]:
    url = server.url.replace("http://", "ws://") + "/ws/chat/"
    timings = []
    async with connect(url, origin=Origin(server.url), open_timeout=60, max_queue=None) as ws:
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
            while True:
                frame = json.loads(await ws.recv())
                if frame.get("type") == "error":
                    raise RuntimeError(f"server refused a message: {frame}")
                if frame.get("client_id") == client_id:
                    timings.append((time.perf_counter() - sent) * 1000)
                    break
    return timings


async def echo_customer(
    server: AsgiServer, messages: int, start: asyncio.Event, think: float
) -> list[float]:
    url = server.url.replace("http://", "ws://") + "/ws/echo/"
    timings = []
    async with connect(url, origin=Origin(server.url), open_timeout=60) as ws:
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
            await ws.recv()
            timings.append((time.perf_counter() - sent) * 1000)
    return timings


async def run_load(make_customer, customers: int) -> tuple[list[float], float]:
    start = asyncio.Event()
    tasks = [asyncio.create_task(make_customer(start)) for _ in range(customers)]
    await asyncio.sleep(0.5)  # let every socket connect before the clock starts
    began = time.perf_counter()
    start.set()
    results = await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    return [t for timings in results for t in timings], elapsed


def measure(server_name: str, customers: int, messages: int, think: float, workdir: Path) -> dict:
    env = embedded_env(
        workdir,
        CHAT_RATE_LIMIT="100000/minute",
        CONVERSATION_CREATE_RATE="100000/hour",
        # Every customer comes from 127.0.0.1: lift the per-address socket bounds.
        SOCKET_CONNECT_RATE="1000000/minute",
        SOCKETS_PER_ADDRESS_MAX="100000",
    )
    env["SQLITE_PATH"] = str(workdir / f"{server_name}.sqlite3")
    manage("migrate", "--noinput", env=env)
    chat = AsgiServer(env, log=workdir / f"{server_name}-chat.log", server=server_name)
    echo = AsgiServer(
        env,
        log=workdir / f"{server_name}-echo.log",
        server=server_name,
        app="bench.echo_asgi:application",
        health_path=None,
    )
    figures = {}
    try:
        chat.start()
        with ThreadPoolExecutor(16) as pool:
            conversations = list(pool.map(create_conversation, [chat.url] * customers))
        iterator = iter(conversations)
        timings, elapsed = asyncio.run(
            run_load(
                lambda start: chat_customer(chat, next(iterator), messages, start, think), customers
            )
        )
        figures["chat"] = (timings, elapsed)
    finally:
        chat.stop()
    try:
        echo.start()
        timings, elapsed = asyncio.run(
            run_load(lambda start: echo_customer(echo, messages, start, think), customers)
        )
        figures["echo"] = (timings, elapsed)
    finally:
        echo.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5, help="messages per customer")
    parser.add_argument("--servers", default="uvicorn,daphne")
    parser.add_argument(
        "--think-ms",
        type=float,
        default=0,
        help="pause between one customer's messages (0: back to back, a burst)",
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sd-bench-"))
    print(
        f"chat round trip: {args.customers} concurrent customers x {args.messages} messages, "
        f"{args.think_ms:.0f} ms apart, loopback, embedded profile (SQLite, in-memory layer)"
    )
    print(
        f"{'server':8} {'path':5} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'msg/s':>8}"
    )
    summary = []
    for server_name in args.servers.split(","):
        figures = measure(server_name, args.customers, args.messages, args.think_ms / 1000, workdir)
        row = {}
        for path, (timings, elapsed) in figures.items():
            p50, p95, p99 = (percentile(timings, q) for q in (0.5, 0.95, 0.99))
            row[path] = (p50, p95)
            rate = len(timings) / elapsed
            print(
                f"{server_name:8} {path:5} {len(timings):>6} "
                f"{p50:>8.1f} {p95:>8.1f} {p99:>8.1f} {rate:>8.0f}"
            )
        summary.append((server_name, row))
    for server_name, row in summary:
        print(
            f"{server_name}: chat/echo ratio p50 {row['chat'][0] / row['echo'][0]:.2f}x, "
            f"p95 {row['chat'][1] / row['echo'][1]:.2f}x"
        )
    if len(summary) > 1:
        (a, ra), (b, rb) = summary[:2]
        print(
            f"chat {a}/{b}: p50 {ra['chat'][0] / rb['chat'][0]:.2f}x, "
            f"p95 {ra['chat'][1] / rb['chat'][1]:.2f}x"
        )
    print(f"(server logs in {workdir}; one run; compare ratios, not absolute figures)")


if __name__ == "__main__":
    main()

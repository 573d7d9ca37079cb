"""Server CPU per chat message: one customer, one message at a time, on an otherwise idle server.

The latency figures of bench/chat_roundtrip.py move with everything else on a shared machine;
the CPU time the server process spends on a message moves much less, so it is the figure to
compare before and after a change to the message path (run both in the same minutes). Under
load a batch shares some of that cost (bench/chat_roundtrip.py's burst); at a paced load most
batches hold one message, so this is what each costs there.

One embedded uvicorn (SQLite, the in-memory layer; make run's profile, no pool, no key). The
customer opens a conversation, sends --warmup messages (the first opens the ticket, which is
routed to review), waits for routing to finish, then sends --messages messages --gap-ms apart,
each after the last came back as its stored `message` event. The server's user + system CPU
time (from /proc) over those messages is divided by their number. Loopback only; no
ANTHROPIC_* variable of the caller reaches the server.

    .venv/bin/python bench/chat_cpu.py [--messages 300] [--gap-ms 20] [--runs 3]
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.typing import Origin

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.chat_roundtrip import LIFTED, RECEIVE_TIMEOUT_SECONDS, create_conversation
from tests.integration.load import percentile
from tests.servers import AsgiServer, embedded_env, manage

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SETTLE_SECONDS = 2.0  # after the warm-up: the ticket's routing and its context are done


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def send_all(url: str, conversation: dict, count: int, gap: float) -> list[float]:
    """Send `count` messages one after another; return each round trip in ms."""
    timings = []
    async with connect(url, origin=Origin(url.replace("ws://", "http://"))) as ws:
        hello = {"type": "hello", "conversation": conversation["id"]}
        await ws.send(json.dumps({**hello, "token": conversation["token"], "last_seq": 0}))
        assert json.loads(await ws.recv())["type"] == "welcome"
        for n in range(count):
            client_id = str(uuid.uuid4())
            sent = time.perf_counter()
            text = f"message {n}: my invoice is wrong"
            await ws.send(json.dumps({"type": "message", "client_id": client_id, "text": text}))
            async with asyncio.timeout(RECEIVE_TIMEOUT_SECONDS):  # lost: the run fails
                while json.loads(await ws.recv()).get("client_id") != client_id:
                    pass
            timings.append((time.perf_counter() - sent) * 1000)
            await asyncio.sleep(gap)
    return timings


def one_run(workdir: Path, messages: int, gap: float, warmup: int) -> tuple[float, list[float]]:
    env = embedded_env(workdir, **LIFTED)
    manage("migrate", "--noinput", env=env)
    server = AsgiServer(env, log=workdir / "chat.log")
    server.start()
    try:
        assert server.process is not None
        url = server.url.replace("http://", "ws://") + "/ws/chat/"
        conversation = create_conversation(server.url)
        asyncio.run(send_all(url, conversation, warmup, gap))
        time.sleep(SETTLE_SECONDS)
        before = cpu_seconds(server.process.pid)
        timings = asyncio.run(send_all(url, conversation, messages, gap))
        return (cpu_seconds(server.process.pid) - before) / messages * 1000, timings
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--gap-ms", type=float, default=20.0, help="pause after each answer")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3, help="each with a fresh server")
    args = parser.parse_args()
    print(
        f"server CPU per chat message: 1 customer, {args.messages} messages {args.gap_ms:.0f} ms"
        f" apart, after {args.warmup}; embedded profile; {time.strftime('%Y-%m-%d %H:%M')},"
        f" {os.cpu_count()} cores"
    )
    print("run   cpu ms/msg   p50 ms   p95 ms   sent   back")
    for run in range(1, args.runs + 1):
        workdir = Path(tempfile.mkdtemp(prefix="sd-chat-cpu-"))
        cpu, timings = one_run(workdir, args.messages, args.gap_ms / 1000, args.warmup)
        p50, p95 = percentile(timings, 0.5), percentile(timings, 0.95)
        counts = f"{args.messages:>4}   {len(timings):>4}"
        print(f"{run:>3}   {cpu:>10.2f}   {p50:>6.2f}   {p95:>6.2f}   {counts}")


if __name__ == "__main__":
    main()

"""Short runs of issue 14's benchmarks, as the commands a person types: bench/chat_roundtrip.py,
bench/routing_overhead.py and bench/chat_cpu.py at tiny sizes, each in its own process.

They prove the benchmarks run to the end and print their table and target lines, and that
nothing went missing on the way (every message sent came back, every ticket was routed, once,
by the model). They assert no latency and no target: CI machines are shared and noisy, and a
benchmark prints figures (docs/benchmarks.md).
"""

import os
import re
import subprocess
import sys

import pytest

from tests.servers import ROOT, service_env

pytestmark = [pytest.mark.scale, pytest.mark.timeout(120)]


def bench(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, f"bench/{script}", *args],
        cwd=ROOT,
        env=service_env(os.environ),
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_chat_roundtrip_prints_its_table_and_target_and_every_message_comes_back():
    customers, messages = 10, 2
    out = bench("chat_roundtrip.py", "--customers", str(customers), "--messages", str(messages))
    assert re.search(r"^server +path +n +p50 ms +p95 ms +p99 ms +msg/s$", out, re.M), out
    rows = re.findall(r"^uvicorn +(chat|echo) +(\d+) +[\d.]+ +[\d.]+ +[\d.]+ +\d+$", out, re.M)
    assert rows == [("chat", str(customers * messages)), ("echo", str(customers * messages))]
    counts = re.findall(r"(\w+ \w+) sent (\d+), back (\d+)", out)
    assert [(sent, back) for _, sent, back in counts] == [(str(customers * messages),) * 2] * 2
    assert re.search(
        r"^burst: chat msg/s = [\d.]+% of echo's \(target >= 20%\): (not )?met", out, re.M
    )
    # The first messages (each opens a ticket) apart from the others, after the target line.
    assert re.search(
        r"^uvicorn chat: first messages .* p50 [\d.]+ / p95 [\d.]+ ms; "
        r"the others p50 [\d.]+ / p95 [\d.]+ ms$",
        out,
        re.M,
    ), out


def test_routing_overhead_prints_its_figures_and_routes_every_ticket_once_by_the_model():
    customers = 10
    out = bench("routing_overhead.py", "--customers", str(customers), "--rounds", "1")
    assert "active rules 0, active local models 0" in out, out
    assert re.search(rf"^routing overhead +{customers} +[-\d.]+ +[-\d.]+ +[-\d.]+$", out, re.M), out
    tickets = re.search(
        r"in the database (\d+) tickets, (\d+) settled, (\d+) still routing, "
        r"customer messages (\d+), duplicates (\d+)",
        out,
    )
    assert tickets is not None, out
    assert tickets.groups() == (str(customers), str(customers), "0", str(customers), "0")
    calls = re.search(
        r"model calls the stand-in saw: (\d+) \(decision rows record (\d+) calls", out
    )
    assert calls is not None, out
    assert calls.groups() == (str(customers), str(customers))
    assert "tickets with no model call: 0; with more than one: 0" in out
    assert re.search(
        r"^routing overhead p95 = [\d.]+ ms \(target <= 12.5 ms\): (not )?met", out, re.M
    )


def test_chat_cpu_prints_the_cpu_of_each_message_and_every_message_comes_back():
    out = bench("chat_cpu.py", "--messages", "20", "--runs", "1", "--gap-ms", "5")
    assert re.search(r"^run +cpu ms/msg +p50 ms +p95 ms +sent +back$", out, re.M), out
    (row,) = re.findall(r"^ +1 +([\d.]+) +[\d.]+ +[\d.]+ +(\d+) +(\d+)$", out, re.M)
    cpu, sent, back = row
    assert float(cpu) > 0
    assert (sent, back) == ("20", "20")

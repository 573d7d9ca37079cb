"""Faults at length: the scale-out profile under each fault of docs/deploy.md, counted.

Every run starts the whole stack (scripts/stack.py: PostgreSQL, Redis, two uvicorn behind
nginx, a Celery worker and beat), sends customers through nginx, injects its fault for real,
and prints what went in and what came out: customers, tickets, messages stored, tickets still
routing, tickets in a pool that does not exist, duplicate messages, events a customer missed or
saw twice, tickets routed more than once, and the faults injected. The CI tests in
tests/integration/test_fault_*.py are the short versions of the same runs.

    .venv/bin/python bench/faults.py [--faults model_api,worker_kill,redis,postgres,asgi]
        [--tickets 1000] [--seed 0]

- model_api: the Messages API stand-in fails 20% of calls (529, 500, 429, timeouts, bodies that
  are not JSON, answers without the tool call, a pool that does not exist); the local model is
  off so every ticket reaches the model tiers. Also checks that every failed answer is on a
  decision row (the SDK's retries in `attempts`, a call's final failure as its error).
- worker_kill: model calls take 0.3 s; every 3 s a pool process of the worker is SIGKILLed, and
  twice the whole worker is killed and restarted (as systemd would).
- redis: Redis is killed and started again, empty, three times during traffic.
- postgres: PostgreSQL is stopped for 4 s, twice during traffic.
- asgi: each uvicorn process in turn is SIGKILLed and restarted, four times during traffic.

No ANTHROPIC_* variable of the caller reaches the servers; traffic goes only to 127.0.0.1.
"""

import argparse
import asyncio
import os
import random
import re
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripts.stack import Stack, kill_group, service_env
from tests.fakes import messages_api as api
from tests.integration.conftest import FAULT_ENV
from tests.integration.customers import SETTLED, Customer, settled, wait_until
from tests.integration.scenarios import (
    FaultyModelApi,
    RunResult,
    customers_run,
    local_model_off,
    lost_or_duplicated,
)

# Shorter than the defaults (120 s, 60 s, 60 s) so a run recovers in seconds, yet above the
# queue wait of a 1,000-ticket burst on one worker, as the stuck window should be in production.
SWEEP = {
    "ROUTING_STUCK_AFTER_SECONDS": "30",
    "ROUTING_STUCK_SWEEP_SECONDS": "10",
    "ROUTING_LEASE_SECONDS": "15",
}
Fault = Callable[[list[Customer]], Awaitable[list[str]]]


def traffic_started(customers: list[Customer], statuses: int) -> Callable[[], bool]:
    return lambda: sum(len(c.statuses) for c in customers) >= statuses


async def at_intervals(
    customers: list[Customer], tickets: int, times: int, action: Callable[[int], str]
) -> list[str]:
    """Run `action(n)` `times` times, spread over the run (by statuses customers have seen)."""
    done = []
    for n in range(times):
        await wait_until(traffic_started(customers, (n + 1) * tickets // (times + 1)))
        done.append(await asyncio.to_thread(action, n))
    return done


def run(stack: Stack, tickets: int, fault: Fault, seed: int) -> RunResult:
    return asyncio.run(
        customers_run(
            stack,
            tickets=tickets,
            concurrency=200,
            seed=seed,
            time_limit=max(600, tickets),
            during=fault,
            quiet_seconds=15,
        )
    )


def model_api(workdir: Path, tickets: int, seed: int) -> tuple[RunResult, list[str]]:
    faulty = FaultyModelApi(rate=0.2, timeout_seconds=2.0, seed=seed)
    with api.MessagesApiStandIn() as standin:
        standin.default = faulty
        env = {"ROUTER_TIMEOUT_SECONDS": "2", "ROUTER_MAX_RETRIES": "2", **_llm(standin)}
        with _stack(workdir, env) as stack:
            local_model_off(stack)

            async def nothing(_: list[Customer]) -> list[str]:
                return []

            result = run(stack, tickets, nothing, seed)
        book = result.ledger
        retried = book["llm_attempts"] - book["llm_calls"]
        failed_calls = sum(book["provider_errors"].values())
        served = dict(faulty.served)
        failures_recorded = faulty.http_failures == retried + failed_calls
        refusals_recorded = faulty.refused_answers == book["invalid_llm_answers"]
        notes = [
            f"stand-in answered {sum(served.values())} requests: {served}",
            f"failed HTTP answers {faulty.http_failures} = retried {retried} + calls that "
            f"failed after retries {failed_calls}: "
            f"{'all on decision rows' if failures_recorded else 'MISMATCH'}",
            f"refused answers {faulty.refused_answers} = invalid decisions "
            f"{book['invalid_llm_answers']}: "
            f"{'all on decision rows' if refusals_recorded else 'MISMATCH'}",
            f"decision rows record {book['llm_attempts']} HTTP attempts over {book['llm_calls']} "
            f"model calls; the stand-in saw {len(standin.requests)} requests",
        ]
    return result, notes


def worker_kill(workdir: Path, tickets: int, seed: int) -> tuple[RunResult, list[str]]:
    rng = random.Random(seed)
    with api.MessagesApiStandIn() as standin:
        standin.default = lambda body: api.delay(0.3, api.route_ticket_default(body))
        with _stack(workdir, {**SWEEP, **_llm(standin)}) as stack:
            local_model_off(stack)

            async def kill(customers: list[Customer]) -> list[str]:
                log = []
                whole_at = {tickets // 3, 2 * tickets // 3}
                while not all(settled(c) for c in customers) or len(customers) < tickets:
                    await asyncio.sleep(3)
                    seen = sum(len(c.statuses) for c in customers)
                    if whole_at and seen >= min(whole_at):
                        whole_at.remove(min(whole_at))
                        await asyncio.to_thread(_kill_whole_worker, stack)
                        log.append("whole worker killed and restarted")
                        continue
                    children = stack.worker.child_pids()
                    if children:
                        victim = rng.choice(children)
                        os.kill(victim, 9)
                        log.append(f"pool process {victim} SIGKILLed")
                return log

            result = run(stack, tickets, kill, seed)
    return result, _summarise(result.fault_log)


def redis(workdir: Path, tickets: int, seed: int) -> tuple[RunResult, list[str]]:
    with _stack(workdir, SWEEP) as stack:

        def restart(n: int) -> str:
            stack.redis.kill()
            time.sleep(1.0)
            stack.redis.restart()
            return f"redis restart {n + 1}: killed, down 1 s, started empty"

        async def fault(customers: list[Customer]) -> list[str]:
            return await at_intervals(customers, tickets, 3, restart)

        result = run(stack, tickets, fault, seed)
        logs = "".join(server.log.read_text() for server in stack.servers)
    closed = sum(int(n) for n in re.findall(r"closed (\d+) sockets of this process", logs))
    return result, [*result.fault_log, f"sockets closed with 1012 for a resync: {closed}"]


def postgres(workdir: Path, tickets: int, seed: int) -> tuple[RunResult, list[str]]:
    with _stack(workdir, SWEEP) as stack:

        def outage(n: int) -> str:
            stack.postgres.stop()
            time.sleep(4.0)
            stack.postgres.start()
            return f"postgres outage {n + 1}: stopped (fast), down 4 s, started"

        async def fault(customers: list[Customer]) -> list[str]:
            return await at_intervals(customers, tickets, 2, outage)

        result = run(stack, tickets, fault, seed)
    unavailable = sum(e["code"] == "unavailable" for c in result.customers for e in c.errors)
    return result, [*result.fault_log, f"unavailable frames answered (then resent): {unavailable}"]


def asgi(workdir: Path, tickets: int, seed: int) -> tuple[RunResult, list[str]]:
    with _stack(workdir, SWEEP) as stack:

        def kill(n: int) -> str:
            server = stack.servers[n % 2]
            server.kill()
            time.sleep(2.0)
            server.restart()
            return f"uvicorn on port {server.port} SIGKILLed, restarted 2 s later"

        async def fault(customers: list[Customer]) -> list[str]:
            return await at_intervals(customers, tickets, 4, kill)

        result = run(stack, tickets, fault, seed)
    reconnected = sum(c.connections > 1 for c in result.customers)
    return result, [*result.fault_log, f"customers that reconnected: {reconnected}"]


FAULTS = {
    "model_api": model_api,
    "worker_kill": worker_kill,
    "redis": redis,
    "postgres": postgres,
    "asgi": asgi,
}


def _llm(standin: api.MessagesApiStandIn) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY": "bench-key", "ANTHROPIC_BASE_URL": standin.url}


def _stack(workdir: Path, extra: dict[str, str]) -> Stack:
    return Stack(
        workdir,
        env_base=service_env(os.environ),
        seed=True,
        extra_env={**FAULT_ENV, **extra},
    )


def _kill_whole_worker(stack: Stack) -> None:
    identity = stack.worker.identity
    assert identity is not None
    kill_group(identity)
    identity.wait_gone(10)
    stack.worker.restart()


def _summarise(log: list[str]) -> list[str]:
    pool = sum("pool process" in line for line in log)
    whole = sum("whole worker" in line for line in log)
    return [f"pool processes SIGKILLed: {pool}; whole worker killed and restarted: {whole}"]


def report(name: str, result: RunResult, notes: list[str]) -> None:
    book = result.ledger
    breaches = lost_or_duplicated(result)
    settled = sum(book["by_status"].get(status, 0) for status in SETTLED)
    runs = book["routing_runs_per_ticket"]
    print(f"\n== {name}: {len(result.customers)} customers in {result.seconds:.1f} s")
    print(
        "| customers in | tickets out | settled | by status | still routing | inactive pool "
        "| duplicate messages | events missed | events seen twice | routed more than once |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {len(result.customers)} | {book['tickets']} | {settled} | {book['by_status']} "
        f"| {len(book['routing'])} | {len(book['inactive_pool'])} | {book['duplicate_messages']} "
        f"| {len(breaches.get('customers_missing_events', []))} | {result.duplicates_seen} "
        f"| {sum(n for k, n in runs.items() if k != '1')} |"
    )
    for line in notes:
        print(f"- {line}")
    print(f"- verdict: {breaches or 'nothing lost, nothing twice'}")


def main() -> None:
    # A plain `kill` unwinds like Ctrl-C: every stack started so far is stopped, none orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--tickets", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in args.faults.split(","):
        with tempfile.TemporaryDirectory(prefix=f"sd-fault-{name}-") as workdir:
            result, notes = FAULTS[name](Path(workdir), args.tickets, args.seed)
        report(name, result, notes)


if __name__ == "__main__":
    main()

"""Fault: Redis restarts during traffic (channel layer, cache, rate limits and Celery broker).

Injected for real: the Redis server is stopped and started again on its port while customers
come through nginx, and, as Redis without persistence does, it comes back empty: group
memberships, queued routing tasks, cached entries and rate-limit counters are gone.

What must hold: both ASGI processes and the worker reconnect by themselves (no restart of
ours); every socket of each process is closed with 1012 and its customer resyncs by
`last_seq`, seeing every stored event exactly once; routing tasks lost with Redis are
routed by the stuck-ticket sweep; the cache and the rate limits work again.
"""

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator

import pytest

from scripts.stack import Stack
from tests.integration.conftest import fault_stack
from tests.integration.customers import SETTLED, Customer, conversation_open, http_json, wait_until
from tests.integration.scenarios import customers_run, lost_or_duplicated

pytestmark = [pytest.mark.scale, pytest.mark.timeout(300)]

TICKETS = 120
RATE = 30  # CHAT_RATE_LIMIT per minute, to show the limits enforce again afterwards


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    with fault_stack(
        tmp_path_factory.mktemp("fault-redis"),
        CHAT_RATE_LIMIT=f"{RATE}/minute",
        ROUTING_STUCK_AFTER_SECONDS="5",
        ROUTING_STUCK_SWEEP_SECONDS="2",
    ) as stack:
        yield stack


def test_redis_restarting_during_traffic_loses_no_event_and_sends_none_twice(stack):
    pids = {(service.name, service.port): service.pid for service in stack.processes}

    health_with_sockets_open: list[int] = []

    async def restart_redis(customers: list[Customer]) -> list[str]:
        await wait_until(lambda: sum(len(c.statuses) for c in customers) >= 40)  # traffic flows
        for server in stack.servers:  # sockets hold each process's receive loop meanwhile
            status, _ = await asyncio.to_thread(http_json, "GET", server.url + "/healthz")
            health_with_sockets_open.append(status)
        await asyncio.to_thread(stack.redis.kill)
        await asyncio.sleep(1.0)  # down for a second: sockets, tasks and publishes fail
        await asyncio.to_thread(stack.redis.restart)
        return ["redis killed and started again, empty"]

    result = asyncio.run(
        customers_run(
            stack,
            tickets=TICKETS,
            concurrency=40,
            time_limit=180,
            quiet_seconds=7,
            during=restart_redis,
        )
    )
    book = result.ledger
    assert health_with_sockets_open == [200, 200]
    assert (book["conversations"], book["tickets"], book["customer_messages"]) == (TICKETS,) * 3
    assert set(book["by_status"]) <= SETTLED
    assert lost_or_duplicated(result) == {}
    assert book["routing_runs_per_ticket"] == {"1": TICKETS}
    # The fault reached the sockets: some were closed for a resync and came back.
    assert sum(1012 in c.closes for c in result.customers) > 0
    asgi_logs = "".join(server.log.read_text() for server in stack.servers)
    assert "so that they resync" in asgi_logs
    # No process of ours was restarted: they reconnected by themselves.
    for service in stack.processes:
        if service is not stack.redis:
            assert service.pid == pids[service.name, service.port], service.name
    # The cache answers again on both processes (/healthz writes and reads it) ...
    for server in stack.servers:
        status, health = http_json("GET", server.url + "/healthz")
        assert status == 200, health
    # ... and rate limits count again from zero: the (RATE + 1)th message of a minute is held.
    asyncio.run(rate_limit_enforced(stack))


async def rate_limit_enforced(stack: Stack) -> None:
    customer = Customer(
        stack.url, await conversation_open(stack.url, deadline=time.monotonic() + 30)
    )
    for _ in range(RATE + 1):
        customer.say(f"message {uuid.uuid4().hex[:6]}")
    with contextlib.suppress(TimeoutError):  # it runs until the deadline, by design
        await customer.run(lambda c: False, deadline=time.monotonic() + 8)
    limited = [e for e in customer.errors if e["code"] == "rate_limited"]
    assert limited, customer.errors
    assert len(customer.stored_client_ids()) == RATE

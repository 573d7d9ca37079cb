"""Fault: PostgreSQL goes down for a few seconds during traffic, then comes back.

Injected for real: the server is stopped (`pg_ctl stop -m fast`, which ends every open
connection) and started again on its port while customers come through nginx. While it is
down, requests answer 503 in the documented error shape (`unavailable`, with Retry-After)
and socket frames answer an `unavailable` error frame; no transaction is half-applied, so no
ticket lacks its message; afterwards work resumes with no restart of our processes, and every
customer's message is stored once and routed once.
"""

import asyncio
import time
from collections.abc import Iterator

import pytest

from scripts.stack import Stack
from tests.integration.conftest import fault_stack
from tests.integration.customers import (
    SETTLED,
    Customer,
    conversation_open,
    http_json,
    settled,
    wait_until,
)
from tests.integration.scenarios import customers_run, lost_or_duplicated

pytestmark = [pytest.mark.scale, pytest.mark.timeout(300)]

TICKETS = 80
DOWN_SECONDS = 4.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    with fault_stack(
        tmp_path_factory.mktemp("fault-postgres"),
        ROUTING_STUCK_AFTER_SECONDS="5",
        ROUTING_STUCK_SWEEP_SECONDS="2",
    ) as stack:
        yield stack


def test_postgres_restarting_answers_503_then_resumes_with_nothing_half_written(stack):
    pids = {(service.name, service.port): service.pid for service in stack.processes}
    probes: list[tuple[int, dict]] = []
    said_while_down: list[tuple[Customer, str]] = []

    async def restart_postgres(customers: list[Customer]) -> list[str]:
        await wait_until(lambda: sum(len(c.statuses) for c in customers) >= 30)
        # One customer is welcomed on a live socket before the outage and speaks during it,
        # whatever the timing of the others (they may all be between frames just then).
        deadline = time.monotonic() + 120
        probe = Customer(stack.url, await conversation_open(stack.url, deadline=deadline))
        customers.append(probe)
        session = asyncio.ensure_future(probe.run(settled, deadline=deadline))
        await wait_until(lambda: probe.live is not None)
        await asyncio.to_thread(stack.postgres.stop)
        said_while_down.append((probe, await probe.send("Ticket sent while the database is down")))
        down_until = time.monotonic() + DOWN_SECONDS
        while time.monotonic() < down_until:  # what a client sees meanwhile
            probes.append(
                await asyncio.to_thread(http_json, "POST", f"{stack.url}/api/v1/conversations/", {})
            )
            await asyncio.sleep(0.25)
        await asyncio.to_thread(stack.postgres.start)
        await session
        return [f"postgres down {DOWN_SECONDS}s"]

    result = asyncio.run(
        customers_run(
            stack,
            tickets=TICKETS,
            concurrency=30,
            time_limit=180,
            quiet_seconds=7,
            during=restart_postgres,
        )
    )
    book = result.ledger
    # While it was down: 503 in the API's error shape, never a 500.
    assert probes
    assert {status for status, _ in probes} == {503}, probes
    assert all(body["error"]["code"] == "unavailable" for _, body in probes)
    assert all(body["error"]["retry_after"] >= 1 for _, body in probes)
    # Afterwards: every customer's message stored once and routed once; nothing half-written
    # (a ticket without its message, a message without its event).
    # (The run's customers and the one who spoke while it was down.)
    assert len(result.customers) == TICKETS + 1
    assert (book["conversations"], book["tickets"], book["customer_messages"]) == (TICKETS + 1,) * 3
    assert set(book["by_status"]) <= SETTLED
    assert lost_or_duplicated(result) == {}
    assert book["routing_runs_per_ticket"] == {"1": TICKETS + 1}
    # The frame sent while it was down was answered `unavailable`, sent again, and stored once
    # (lost_or_duplicated compares every customer's client_ids with the database's).
    ((probe, client_id),) = said_while_down
    assert any(e["code"] == "unavailable" and e.get("client_id") == client_id for e in probe.errors)
    assert client_id in probe.stored_client_ids()
    # No process of ours was restarted.
    for service in stack.processes:
        if service is not stack.postgres:
            assert service.pid == pids[service.name, service.port], service.name
    logs = "".join(server.log.read_text() for server in stack.servers)
    assert "dependency unavailable" in logs
    assert "Traceback" not in logs

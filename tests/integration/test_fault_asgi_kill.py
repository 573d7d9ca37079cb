"""Fault: one of the two ASGI processes is killed (SIGKILL) while customers are connected.

Injected for real: `kill -9` of a uvicorn process behind nginx. Its customers' sockets drop
without a close frame; they reconnect through nginx, which passes them to the other process,
and resync by `last_seq`. An agent replies to every ticket while the process is down (through
nginx, so on the survivor): each customer sees each reply exactly once. The killed process is
then started again, as systemd would, and serves again.
"""

import asyncio
import time
from collections.abc import Iterator

import pytest

from scripts.stack import Stack, manage
from tests.integration.conftest import fault_stack
from tests.integration.customers import Customer, conversation_open, http_json, settled, wait_until
from tests.integration.ledger import ledger

pytestmark = [pytest.mark.scale, pytest.mark.timeout(300)]

CUSTOMERS = 40
REPLY = "An agent's answer, sent while a server was down"


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    with fault_stack(tmp_path_factory.mktemp("fault-asgi")) as stack:
        yield stack


def staff_token(stack: Stack) -> str:
    output = manage("drf_create_token", "admin", env=stack.env)
    return output.split()[2]


def replied(customer: Customer) -> bool:
    return any(
        frame["type"] == "message" and frame["sender"] == "agent"
        for frame in customer.events.values()
    )


async def scenario(stack: Stack, token: str) -> tuple[list[Customer], dict]:
    deadline = time.monotonic() + 180
    customers = [
        Customer(stack.url, await conversation_open(stack.url, deadline=deadline))
        for _ in range(CUSTOMERS)
    ]
    for customer in customers:
        customer.say("I was charged twice for my subscription this month")
    runs = [asyncio.ensure_future(c.run(replied, deadline=deadline)) for c in customers]
    await wait_until(lambda: all(settled(c) for c in customers))
    victim = stack.servers[0]
    await asyncio.to_thread(victim.kill)
    # The agent answers every ticket while one process is down.
    _, listing = await asyncio.to_thread(
        http_json, "GET", f"{stack.url}/api/v1/tickets/?limit=200", auth=f"Token {token}"
    )
    replies = {}
    for ticket in listing["results"]:
        replies[ticket["id"]] = await asyncio.to_thread(
            http_json,
            "POST",
            f"{stack.url}/api/v1/tickets/{ticket['id']}/reply/",
            {"text": REPLY},
            auth=f"Token {token}",
        )
    await asyncio.gather(*runs)
    await asyncio.to_thread(victim.restart)  # as systemd's Restart=on-failure
    return customers, replies


def test_killing_one_asgi_process_loses_nothing_and_replies_arrive_once(stack):
    token = staff_token(stack)
    customers, replies = asyncio.run(scenario(stack, token))
    assert len(replies) == CUSTOMERS
    assert {status for status, _ in replies.values()} == {201}
    for customer in customers:
        agent_messages = [
            f for f in customer.events.values() if f["type"] == "message" and f["sender"] == "agent"
        ]
        assert [m["text"] for m in agent_messages] == [REPLY]
        assert customer.duplicates == 0
        assert sorted(customer.events) == list(range(1, customer.last_seq + 1))
    # About half the customers were on the killed process: they reconnected and resynced.
    reconnected = sum(c.connections > 1 for c in customers)
    assert 0 < reconnected < CUSTOMERS
    book = ledger(stack.env)
    assert book["event_gaps"] == []
    assert book["duplicate_messages"] == 0
    assert book["routing"] == []
    # The restarted process serves again.
    victim = stack.servers[0]
    assert victim.alive()
    status, _ = http_json("GET", f"{victim.url}/healthz")
    assert status == 200

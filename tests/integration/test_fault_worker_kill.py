"""Fault: a Celery worker is killed with SIGKILL while it routes a ticket.

Injected for real: the Messages API stand-in holds the worker's model call open, and the test
sends SIGKILL to the process making it. What bounds the recovery (docs/deploy.md):

- Only the pool process dies (the OOM killer's usual choice): its parent sees it go and, with
  `acks_late` and `task_reject_on_worker_lost`, puts the message back at once; a new pool
  process routes the ticket within seconds.
- The whole worker dies (its machine, or `kill -9` of the group): the message stays unacked in
  Redis until the broker's visibility timeout (2 h), far too late, so the stuck-ticket sweep
  (beat, every ROUTING_STUCK_SWEEP_SECONDS) routes again any ticket left in `routing` for
  ROUTING_STUCK_AFTER_SECONDS whose routing lease (ROUTING_LEASE_SECONDS, held by the dead
  run) has run out, once a worker runs again. The late redelivery then finds the ticket routed
  and does nothing.

Either way the ticket is routed exactly once: one committed routing run, one routed status.
"""

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from scripts.stack import Stack, kill_group
from tests.fakes import messages_api as api
from tests.integration.conftest import fault_stack
from tests.integration.customers import Customer, conversation_open, settled
from tests.integration.ledger import ledger
from tests.integration.scenarios import local_model_off

pytestmark = [pytest.mark.scale, pytest.mark.timeout(300)]

STUCK_AFTER = 5
SWEEP_EVERY = 2
LEASE = 5


class HeldCall:
    """A model API whose next call is held open until released: the worker is mid-route."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()
        self.holding = False

    def hold_next(self) -> None:
        self.entered.clear()
        self.released.clear()
        self.holding = True

    def release(self) -> None:
        self.holding = False
        self.released.set()

    def __call__(self, body: dict) -> api.Reply:
        if self.holding:
            self.entered.set()
            self.released.wait(60)
        return api.route_ticket_default(body)


@pytest.fixture(scope="module")
def held() -> Iterator[tuple[api.MessagesApiStandIn, HeldCall]]:
    call = HeldCall()
    with api.MessagesApiStandIn() as standin:
        standin.default = call
        yield standin, call
        call.release()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, held) -> Iterator[Stack]:
    standin, _ = held
    with fault_stack(
        tmp_path_factory.mktemp("fault-worker-kill"),
        standin=standin,
        worker_concurrency=1,
        ROUTING_STUCK_AFTER_SECONDS=str(STUCK_AFTER),
        ROUTING_STUCK_SWEEP_SECONDS=str(SWEEP_EVERY),
        ROUTING_LEASE_SECONDS=str(LEASE),
    ) as stack:
        local_model_off(stack)
        yield stack


async def ticket_killed_mid_route(stack: Stack, call: HeldCall, kill) -> tuple[Customer, float]:
    """Open a ticket, wait until the worker is inside its model call, `kill()`, release the
    model, and wait for the routed status. Returns the customer and seconds from the kill."""
    deadline = time.monotonic() + 120
    customer = Customer(stack.url, await conversation_open(stack.url, deadline=deadline))
    # A text of its own: the decision cache must not answer for the model.
    customer.say(f"Ticket {uuid.uuid4().hex[:8]}: parcel invoice login refund screen card")
    call.hold_next()
    run = asyncio.ensure_future(customer.run(settled, deadline=deadline))
    assert await asyncio.to_thread(call.entered.wait, 30), "the worker never called the model"
    killed_at = time.monotonic()
    await asyncio.to_thread(kill)
    call.release()
    await run
    return customer, time.monotonic() - killed_at


def routed_once(stack: Stack, customer: Customer) -> None:
    conversation = customer.conversation["id"].replace("-", "")
    book = ledger(stack.env)
    assert book["last_seq"][conversation] == customer.last_seq
    assert [s["status"] for s in customer.statuses] == ["routing", "queued"]
    assert customer.duplicates == 0
    assert book["routing"] == []
    assert set(book["routing_runs_per_ticket"]) == {"1"}  # every ticket: one committed run


def test_a_killed_pool_process_is_replaced_and_its_ticket_routed_once(stack, held):
    _, call = held
    children = stack.worker.child_pids()
    assert len(children) == 1

    def kill_the_pool_process() -> None:
        import os
        import signal

        os.kill(children[0], signal.SIGKILL)

    customer, seconds = asyncio.run(ticket_killed_mid_route(stack, call, kill_the_pool_process))
    routed_once(stack, customer)
    # Requeued at once (reject_on_worker_lost), not by the sweep: well inside its window.
    assert seconds < STUCK_AFTER + 5
    assert stack.worker.alive()
    assert stack.worker.child_pids() != children
    assert "SIGKILL" in stack.worker.log.read_text()


def test_a_killed_worker_is_restarted_and_the_sweep_routes_its_ticket_once(stack, held):
    _, call = held

    def kill_the_whole_worker() -> None:
        identity = stack.worker.identity
        assert identity is not None
        kill_group(identity)
        identity.wait_gone(10)
        time.sleep(1)
        stack.worker.restart()  # as systemd's Restart=on-failure does

    customer, seconds = asyncio.run(ticket_killed_mid_route(stack, call, kill_the_whole_worker))
    routed_once(stack, customer)
    # Bound: the dead run's lease, then the stuck window and one sweep period, plus a routing
    # run and the restart.
    assert seconds < LEASE + STUCK_AFTER + SWEEP_EVERY + 20
    assert "still routing" in stack.worker.log.read_text()

"""Fault: the model API fails one call in five (529, 500, 429, timeouts, malformed bodies,
answers without the tool call, a pool that does not exist), on the scale-out profile.

Injected for real: the Messages API stand-in answers the real SDK in the Celery worker with
those errors. 100 customers come through nginx; each ticket must end queued, assigned,
awaiting the customer or in review, never in a pool that does not exist, and every failed
answer must be on a decision row (the SDK's retries in `attempts`, a final failure as an
error). `bench/faults.py` runs the same with 1,000 tickets.
"""

import asyncio
from collections.abc import Iterator

import pytest

from scripts.stack import Stack
from tests.fakes.messages_api import MessagesApiStandIn
from tests.integration.conftest import fault_stack
from tests.integration.customers import SETTLED
from tests.integration.scenarios import (
    FAULT_KINDS,
    FaultyModelApi,
    customers_run,
    local_model_off,
    lost_or_duplicated,
)

pytestmark = [pytest.mark.scale, pytest.mark.timeout(300)]

TICKETS = 100
ROUTER_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def model_api() -> Iterator[tuple[MessagesApiStandIn, FaultyModelApi]]:
    faulty = FaultyModelApi(rate=0.2, timeout_seconds=ROUTER_TIMEOUT, seed=11)
    with MessagesApiStandIn() as standin:
        standin.default = faulty
        yield standin, faulty


@pytest.fixture(scope="module")
def stack(tmp_path_factory, model_api) -> Iterator[Stack]:
    standin, _ = model_api
    with fault_stack(
        tmp_path_factory.mktemp("fault-model-api"),
        standin=standin,
        ROUTER_TIMEOUT_SECONDS=str(ROUTER_TIMEOUT),
        ROUTER_MAX_RETRIES="2",
    ) as stack:
        local_model_off(stack)
        yield stack


def test_a_model_api_failing_one_call_in_five_loses_no_ticket(stack, model_api):
    standin, faulty = model_api
    result = asyncio.run(customers_run(stack, tickets=TICKETS, time_limit=240))
    book = result.ledger
    # In: 100 customers, one message each. Out: 100 tickets, each settled, each seen live.
    assert (book["conversations"], book["tickets"], book["customer_messages"]) == (TICKETS,) * 3
    assert set(book["by_status"]) <= SETTLED, book["by_status"]
    assert all(c.statuses[-1]["status"] in SETTLED for c in result.customers)
    assert lost_or_duplicated(result) == {}
    # Each ticket was routed by exactly one committed routing run.
    assert book["routing_runs_per_ticket"] == {"1": TICKETS}
    # Every HTTP request the stand-in answered is on a decision row ...
    assert book["llm_attempts"] == len(standin.requests) == sum(faulty.served.values())
    # ... every failed answer either was retried (an attempt beyond a call's last) or ended
    # its call as a provider error, and every refused answer is an invalid decision.
    retried = book["llm_attempts"] - book["llm_calls"]
    assert faulty.http_failures == retried + sum(book["provider_errors"].values())
    assert faulty.refused_answers == book["invalid_llm_answers"]
    # The fault really happened, in every kind, at about the rate asked for.
    assert set(FAULT_KINDS) <= set(faulty.served), faulty.served
    failing = sum(n for kind, n in faulty.served.items() if kind != "ok")
    assert 0.12 < failing / sum(faulty.served.values()) < 0.28
    # Some tickets needed the larger model or a person because of it.
    assert book["by_status"].get("in_review", 0) + book["by_status"].get("queued", 0) > 0

"""Fault scenarios shared by the CI tests (short) and `bench/faults.py` (long).

Each scenario drives real customers through nginx, injects its fault for real, then counts
what went in (customers, messages, HTTP answers the stand-in gave) and what came out (the
events each customer saw, and the database's ledger), and returns both for the caller to
assert on or print.
"""

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from scripts.stack import Stack, manage
from tests.fakes import messages_api as api
from tests.integration.customers import Customer, conversation_open, settled
from tests.integration.ledger import ledger

# What the stand-in answers when it fails a call, each as likely as the others.
FAULT_KINDS = ("529", "500", "429", "timeout", "malformed_body", "no_tool", "bad_tool_input")
# A reply the router must refuse: a pool that does not exist.
BAD_TOOL_INPUT = {
    "action": "route",
    "pool": "sales_agent",
    "confidence": 0.9,
    "reason": "x",
    "missing_fields": [],
}
WORDS = [
    "parcel",
    "invoice",
    "login",
    "refund",
    "screen",
    "card",
    "account",
    "delivery",
    "password",
    "charge",
    "app",
    "order",
    "subscription",
    "receipt",
    "email",
    "crash",
    "upgrade",
    "address",
    "coupon",
    "error",
    "payment",
]


@dataclass
class FaultyModelApi:
    """The stand-in's answer to each call: a valid route to a random active pool, or, with
    probability `rate`, one of FAULT_KINDS. Counts what it answered, by kind."""

    rate: float
    timeout_seconds: float  # a "timeout" answers later than this (the router's timeout)
    seed: int = 0
    served: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> api.Reply:
        enum = [slug for slug in api._pool_enum(body, "route_ticket") if slug]
        with self._lock:
            failing = self._rng.random() < self.rate
            kind = self._rng.choice(FAULT_KINDS) if failing else "ok"
            pool = self._rng.choice(enum)
            self.served[kind] += 1
        valid = api.tool_use(
            {
                "action": "route",
                "pool": pool,
                "confidence": 0.9,
                "reason": "stand-in",
                "missing_fields": [],
            }
        )
        match kind:
            case "529":
                return api.error(529, "overloaded_error")
            case "500":
                return api.error(500, "api_error")
            case "429":
                return api.error(429, "rate_limit_error")
            case "timeout":
                return api.delay(self.timeout_seconds + 1.0, valid)
            case "malformed_body":
                return api.malformed()
            case "no_tool":
                return api.text("I think this is about billing.")
            case "bad_tool_input":
                return api.tool_use(BAD_TOOL_INPUT)
        return valid

    @property
    def http_failures(self) -> int:
        """Answers the SDK sees as a failed request (it retries them, or gives up)."""
        return sum(self.served[kind] for kind in ("529", "500", "429", "timeout", "malformed_body"))

    @property
    def refused_answers(self) -> int:
        """Well-formed answers the router must refuse (no tool call, a pool that is not one)."""
        return self.served["no_tool"] + self.served["bad_tool_input"]


def ticket_text(n: int, rng: random.Random) -> str:
    """A first message no rule, cache entry or local model knows: the model tier decides."""
    return f"Ticket {n}: " + " ".join(rng.choice(WORDS) for _ in range(8))


def local_model_off(stack: Stack) -> None:
    """Every ticket of the run reaches the model tiers."""
    manage(
        "shell",
        "-c",
        "from apps.orchestrator.models import ModelVersion; "
        "ModelVersion.objects.update(active=False)",
        env=stack.env,
    )


@dataclass
class RunResult:
    customers: list[Customer]
    ledger: dict
    seconds: float
    fault_log: list[str] = field(default_factory=list)

    @property
    def frames_seen(self) -> int:
        return sum(len(c.events) for c in self.customers)

    @property
    def duplicates_seen(self) -> int:
        return sum(c.duplicates for c in self.customers)


async def customers_run(
    stack: Stack,
    *,
    tickets: int,
    concurrency: int = 200,
    seed: int = 0,
    time_limit: float = 300,
    during: Callable[[list[Customer]], Awaitable[list[str]]] | None = None,
    quiet_seconds: float = 0,
) -> RunResult:
    """`tickets` customers each open a conversation through nginx and send one message, then
    stay (reconnecting as the widget does) until their ticket has left routing. `during`
    runs beside them (the fault) and returns what it did, for the report. The ledger is read
    `quiet_seconds` after the last ticket settled, so a late duplicate (a redelivered task, a
    sweep) has had its chance to route a ticket twice."""
    rng = random.Random(seed)
    deadline = time.monotonic() + time_limit
    started = time.monotonic()
    customers: list[Customer] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int) -> None:
        async with gate:
            conversation = await conversation_open(stack.url, deadline=deadline)
            customer = Customer(stack.url, conversation)
            customers.append(customer)
            customer.say(ticket_text(n, rng))
            await customer.run(settled, deadline=deadline)

    fault = asyncio.ensure_future(during(customers)) if during else None
    await asyncio.gather(*(one(n) for n in range(tickets)))
    fault_log = await fault if fault else []
    seconds = time.monotonic() - started
    await asyncio.sleep(quiet_seconds)
    # Events stored after a customer's ticket settled (a clarifying question after its status,
    # say) are fetched as an open widget would have shown them; the ledger is read after, so
    # anything stored later still (the system is never quite still) is not counted as missed.
    await asyncio.gather(*(c.catch_up() for c in customers))
    book = await asyncio.to_thread(ledger, stack.env)
    return RunResult(customers, book, seconds, fault_log)


def lost_or_duplicated(result: RunResult) -> dict[str, Any]:
    """Every breach of "nothing lost, nothing twice" in a run, by kind (empty lists: none)."""
    book = result.ledger
    breaches: dict[str, Any] = {
        "tickets_in_routing": book["routing"],
        "tickets_in_inactive_pools": book["inactive_pool"],
        "event_gaps": book["event_gaps"],
        "duplicate_messages": book["duplicate_messages"],
        "duplicate_frames_seen": result.duplicates_seen,
        "customers_missing_events": [],
        "messages_not_stored": [],
    }
    breaches["customers_not_caught_up"] = []
    for customer in result.customers:
        conversation = customer.conversation["id"].replace("-", "")
        if customer.caught_up_to is None:
            breaches["customers_not_caught_up"].append(conversation)
            continue
        # Every event up to the latest the final hello reported, none skipped; what the ledger
        # has beyond it was stored after that hello.
        seen = sorted(customer.events)
        latest = max(customer.caught_up_to, customer.last_seq)
        if seen != list(range(1, latest + 1)) or latest > book["last_seq"][conversation]:
            breaches["customers_missing_events"].append(conversation)
        stored = set(book["customer_client_ids"].get(conversation, []))
        if {cid.replace("-", "") for cid in customer.sent} != stored:
            breaches["messages_not_stored"].append(conversation)
    return {kind: found for kind, found in breaches.items() if found}

"""A routing run records its decisions and moves the ticket in one transaction: the outcome is
applied (apps/flows/routing.py) under the ticket's lock, or nothing of the run stays."""

import contextlib
from collections.abc import Iterator
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection
from django.db.models.sql.compiler import SQLCompiler, SQLInsertCompiler, SQLUpdateCompiler
from django.test.utils import CaptureQueriesContext

from apps.chat.models import Message
from apps.chat.services import conversation_create
from apps.flows.routing import ticket_route
from apps.orchestrator import services as routing
from apps.orchestrator.models import RoutingDecision, RoutingRule
from apps.orchestrator.services import RoutedTicket
from apps.pools.presence import agent_presence_connect
from apps.pools.services import pool_membership_set
from apps.review.models import ReviewItem
from apps.tickets.models import Ticket
from apps.tickets.services import ticket_message_post
from tests.orchestrator.conftest import pools  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


def ticket_waiting(text: str) -> Ticket:
    """A customer's ticket in `routing`, stored without starting a run (the flow would)."""
    conversation = conversation_create().conversation
    posted = ticket_message_post(
        conversation=conversation, text=text, sender=Message.Sender.CUSTOMER
    )
    assert posted.ticket is not None
    assert posted.routing_due
    return posted.ticket


def test_the_outcome_is_applied_while_the_run_holds_the_ticket(pools):  # noqa: F811
    RoutingRule.objects.create(name="invoice", pattern="invoice", pool=pools["billing"])
    ticket = ticket_waiting("Where is my invoice?")
    seen: list[RoutedTicket] = []

    def apply(routed: RoutedTicket) -> None:
        seen.append(routed)
        # Inside the run's transaction: its decisions are already written, its lease cleared.
        assert RoutingDecision.objects.filter(ticket=routed.ticket, ends_run=True).count() == 1
        assert routed.ticket.routing_lease_owner == ""

    decision = routing.ticket_route(ticket=ticket, apply=apply)
    assert decision is not None
    assert decision.tier == RoutingDecision.Tier.RULES
    (routed,) = seen
    assert (routed.outcome.action, routed.outcome.pool) == ("route", pools["billing"])
    assert routed.decisions[-1] == decision
    assert not routed.human


def test_an_outcome_that_cannot_be_applied_leaves_nothing_and_the_next_run_routes(pools):  # noqa: F811
    RoutingRule.objects.create(name="invoice", pattern="invoice", pool=pools["billing"])
    ticket = ticket_waiting("Where is my invoice?")

    def apply(routed: RoutedTicket) -> None:
        raise RuntimeError("the queue could not be written")

    with pytest.raises(RuntimeError):
        routing.ticket_route(ticket=ticket, apply=apply)
    ticket.refresh_from_db()
    assert not RoutingDecision.objects.filter(ticket=ticket).exists()
    assert (ticket.status, ticket.routing_lease_owner) == (Ticket.Status.ROUTING, "")

    ticket_route(ticket=ticket)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.pool) == (Ticket.Status.QUEUED, pools["billing"])
    assert RoutingDecision.objects.filter(ticket=ticket, ends_run=True).count() == 1


def test_the_queue_is_told_the_deciding_tier_without_reading_the_decisions_back(pools):  # noqa: F811
    """The run holds the decisions it wrote: the tier that chose the pool (the `ticket.routed`
    event and the routed-tickets metric carry it) is not read back from the database."""
    RoutingRule.objects.create(name="invoice", pattern="invoice", pool=pools["billing"])
    ticket = ticket_waiting("Where is my invoice?")
    table = RoutingDecision._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        ticket_route(ticket=ticket)
    reads = [q["sql"] for q in queries if q["sql"].startswith("SELECT") and table in q["sql"]]
    # The one read is whether the ticket was asked a question before (a clarify decision).
    assert len(reads) == 1, reads
    assert "clarify" in str(reads[0])
    ticket.refresh_from_db()
    assert (ticket.status, ticket.pool) == (Ticket.Status.QUEUED, pools["billing"])


def test_a_run_reads_the_prompt_the_model_version_and_the_text_without_compiling(pools):  # noqa: F811
    """What every run reads (the ticket, twice; the pools and rules; the running experiment or
    the active prompt; the active local model; the customer's words; whether a question was
    asked) are statements written once
    (apps/core/sql.py): compiling them was a fifth of a run's CPU."""
    ticket = ticket_waiting("My card was charged twice")
    compiled: list[str] = []
    original = SQLCompiler.as_sql

    def as_sql(compiler, *args, **kwargs):
        if type(compiler) is SQLCompiler:  # a SELECT
            compiled.append(getattr(compiler.query.model, "__name__", ""))
        return original(compiler, *args, **kwargs)

    with mock.patch.object(SQLCompiler, "as_sql", as_sql):
        ticket_route(ticket=ticket)
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.IN_REVIEW  # no rule, no model, no key: a person
    read_once = {
        "Ticket",
        "Pool",
        "RoutingRule",
        "PromptExperiment",
        "PromptVersion",
        "ModelVersion",
        "Message",
        "RoutingDecision",
    }
    assert not read_once & set(compiled), compiled


@contextlib.contextmanager
def compiled_in_transaction() -> Iterator[list[str]]:
    """The statements the ORM compiles inside the first transaction begun in the block (a
    routing run's: its lease was taken in autocommit before it), filled in at the block's end.
    A listener's own transaction after the commit (the desk gathers the agent's context) is
    not the run's."""
    marks: list[tuple[int, str]] = []
    compilers = [SQLCompiler, SQLInsertCompiler, SQLUpdateCompiler]
    originals = {klass: klass.as_sql for klass in compilers}

    def recorder(klass):
        def as_sql(compiler, *args, **kwargs):
            marks.append((len(connection.queries_log), compiler.query.model.__name__))
            return originals[klass](compiler, *args, **kwargs)

        return as_sql

    inside: list[str] = []
    with CaptureQueriesContext(connection) as queries, contextlib.ExitStack() as patches:
        for klass in compilers:
            patches.enter_context(mock.patch.object(klass, "as_sql", recorder(klass)))
        yield inside
    sqls = [query["sql"] for query in queries.captured_queries]
    begin = next(i for i, sql in enumerate(sqls) if sql.startswith("BEGIN"))
    commit = next(i for i, sql in enumerate(sqls) if i > begin and sql == "COMMIT")
    inside += [
        name for position, name in marks if begin < position - queries.initial_queries <= commit
    ]


def test_a_run_to_review_compiles_nothing_while_it_holds_the_write_lock():
    """Inside the run's transaction (SQLite's one write lock, which every customer's message
    waits for) the ticket, its decision, its status event and its review item are written with
    statements written once (apps/core/sql.py), as they are read."""
    ticket = ticket_waiting("My card was charged twice")
    with compiled_in_transaction() as compiled:
        ticket_route(ticket=ticket)
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.IN_REVIEW
    assert ReviewItem.objects.filter(ticket=ticket, status="open").count() == 1
    assert compiled == []


def test_a_run_to_a_queue_with_an_agent_online_compiles_nothing_in_its_transaction(pools):  # noqa: F811
    """The same for a ticket a rule sends to a pool whose online agent takes it at once: the
    queue, the activity log, the agents and their load, the waiting tickets, the assignment."""
    agent = User.objects.create_user("ann", password="pw", is_staff=True)
    pool_membership_set(user=agent, pools=[pools["billing"]])
    agent_presence_connect(user=agent)
    RoutingRule.objects.create(name="invoice", pattern="invoice", pool=pools["billing"])
    ticket = ticket_waiting("Where is my invoice?")
    with compiled_in_transaction() as compiled:
        ticket_route(ticket=ticket)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee) == (Ticket.Status.ASSIGNED, agent)
    assert compiled == [], "\n".join(compiled)


def test_a_run_to_a_queue_sets_no_savepoint_in_its_transaction(pools):  # noqa: F811
    """Queueing, a status change and an assignment run inside the run's transaction without
    savepoints of their own (two statements each, under SQLite's one write lock)."""
    agent = User.objects.create_user("ann", password="pw", is_staff=True)
    pool_membership_set(user=agent, pools=[pools["billing"]])
    agent_presence_connect(user=agent)
    RoutingRule.objects.create(name="invoice", pattern="invoice", pool=pools["billing"])
    ticket = ticket_waiting("Where is my invoice?")
    with CaptureQueriesContext(connection) as queries:
        ticket_route(ticket=ticket)
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.ASSIGNED
    sqls = [query["sql"] for query in queries.captured_queries]
    begin = next(i for i, sql in enumerate(sqls) if sql.startswith("BEGIN"))
    commit = sqls.index("COMMIT", begin)
    assert not [sql for sql in sqls[begin:commit] if sql.startswith("SAVEPOINT")]

"""RoutingDecision's queryset (the filters reports, alerts, training and prompts share) and its
one column list."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from apps.chat.services import conversation_create
from apps.orchestrator.models import DECISION_COLUMNS, RoutingDecision, decision_columns
from apps.tickets.models import Ticket

pytestmark = pytest.mark.django_db
T = RoutingDecision.Tier
A = RoutingDecision.Action
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def a_ticket() -> Ticket:
    return Ticket.objects.create(conversation=conversation_create().conversation)


def decide(
    ticket: Ticket | None, *, ends_run: bool, at: datetime = NOON, **fields
) -> RoutingDecision:
    fields.setdefault("tier", T.LOCAL)
    fields.setdefault("action", A.ROUTE if ends_run else A.PASS)
    decision = RoutingDecision.objects.create(
        ticket=ticket, request_id=uuid.uuid4(), ends_run=ends_run, **fields
    )
    RoutingDecision.objects.filter(pk=decision.pk).update(created_at=at)
    return decision


def ids(decisions) -> set[int]:
    return set(decisions.values_list("pk", flat=True))


def test_real_decisions_leave_out_dry_runs_and_decisions_without_a_ticket():
    ticket = a_ticket()
    real = decide(ticket, ends_run=True)
    decide(ticket, ends_run=True, dry_run=True)
    decide(None, ends_run=True, dry_run=True)
    decide(None, ends_run=True)

    assert ids(RoutingDecision.objects.real()) == {real.pk}


def test_deciding_decisions_are_the_attempts_that_ended_their_run():
    ticket = a_ticket()
    passed = decide(ticket, ends_run=False)
    ended = decide(ticket, ends_run=True)

    assert ids(RoutingDecision.objects.deciding()) == {ended.pk}
    assert passed.pk not in ids(RoutingDecision.objects.deciding())


def test_a_tickets_outcome_is_its_latest_deciding_decision_of_a_real_run():
    first, second = a_ticket(), a_ticket()
    decide(first, ends_run=True, at=NOON)  # routed, then routed again (a customer's answer)
    decide(first, ends_run=False, at=NOON + timedelta(minutes=1))
    again = decide(first, ends_run=True, at=NOON + timedelta(minutes=2))
    decide(first, ends_run=False, at=NOON + timedelta(minutes=3))  # a later pass ends nothing
    only = decide(second, ends_run=True)
    decide(second, ends_run=True, dry_run=True)  # a dry run is no later outcome
    decide(None, ends_run=True)

    assert ids(RoutingDecision.objects.ticket_outcomes()) == {again.pk, only.pk}


def test_an_outcome_outside_the_queryset_hides_the_earlier_one():
    ticket = a_ticket()
    early = decide(ticket, ends_run=True, at=NOON)
    decide(ticket, ends_run=True, at=NOON + timedelta(days=2))
    window = RoutingDecision.objects.in_window(since=NOON, until=NOON + timedelta(days=1))

    # The ticket's routing counts once, by its latest outcome, which falls in another window.
    assert early.pk in ids(window)
    assert ids(window.ticket_outcomes()) == set()


def test_a_window_includes_its_start_and_leaves_its_end_to_the_next_one():
    ticket = a_ticket()
    since, until = NOON, NOON + timedelta(hours=1)
    at_start = decide(ticket, ends_run=False, at=since)
    decide(ticket, ends_run=False, at=since - timedelta(microseconds=1))
    last_inside = decide(ticket, ends_run=False, at=until - timedelta(microseconds=1))
    at_end = decide(ticket, ends_run=True, at=until)

    assert ids(RoutingDecision.objects.in_window(since=since, until=until)) == {
        at_start.pk,
        last_inside.pk,
    }
    following = RoutingDecision.objects.in_window(since=until, until=until + timedelta(hours=1))
    assert ids(following) == {at_end.pk}


def test_every_decision_column_list_is_taken_from_the_one_list():
    assert decision_columns() == list(DECISION_COLUMNS)
    assert decision_columns(without=("rule",)) == [c for c in DECISION_COLUMNS if c != "rule"]
    with pytest.raises(ValueError, match="not decision columns"):
        decision_columns(without=("no_such_column",))

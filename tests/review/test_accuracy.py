"""Routing accuracy from audit verdicts (per tier, pooled, volume-weighted), the Wilson
interval, and the review queue's counts."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from apps.chat.models import Message
from apps.chat.services import conversation_create
from apps.core.stats import wilson_interval
from apps.flows.messages import message_post
from apps.orchestrator.models import RoutingDecision
from apps.pools.models import Pool
from apps.review.audit import audit_item_maybe_open
from apps.review.models import ReviewItem
from apps.review.selectors import (
    AccuracyEstimate,
    review_queue_stats,
    routing_accuracy,
)
from apps.review.services import review_item_open, review_item_resolve
from apps.tickets.models import Ticket
from apps.tickets.services import ticket_status_set

pytestmark = pytest.mark.django_db

Tier = RoutingDecision.Tier
Verdict = ReviewItem.Verdict


# --- the Wilson interval ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n", "expected"),
    [
        (81, 263, (0.2553, 0.3662)),
        (0, 10, (0.0, 0.2775)),
        (10, 10, (0.7225, 1.0)),
        (5, 10, (0.2366, 0.7634)),
        (1, 1, (0.2065, 1.0)),
        (0, 0, (0.0, 1.0)),
    ],
)
def test_wilson_interval_matches_worked_examples(successes, n, expected):
    low, high = wilson_interval(successes, n)
    assert (round(low, 4), round(high, 4)) == expected
    assert 0.0 <= low <= high <= 1.0


def test_wilson_interval_is_exact_at_the_edges_and_narrows_with_z():
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0
    wide, narrow = wilson_interval(81, 263), wilson_interval(81, 263, z=1.0)
    assert wide[0] < narrow[0] < 81 / 263 < narrow[1] < wide[1]


@pytest.mark.parametrize(("successes", "n"), [(-1, 5), (6, 5), (0, -1)])
def test_wilson_interval_refuses_impossible_counts(successes, n):
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(successes, n)


# --- accuracy from resolved audits ----------------------------------------------------------


@pytest.fixture
def reviewer(db) -> User:
    user = User.objects.create_user("rita", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="resolve_reviewitem"))
    return User.objects.get(pk=user.pk)  # fresh: permissions are cached per instance


def open_ticket(text: str = "Where is my invoice?") -> Ticket:
    conversation = conversation_create().conversation
    message_post(conversation=conversation, text=text, sender=Message.Sender.CUSTOMER)
    return Ticket.objects.get(conversation=conversation)


def route(tier: str, pool: Pool, **fields) -> RoutingDecision:
    """A ticket's final routing decision as routing records it."""
    fields = {"action": RoutingDecision.Action.ROUTE, "confidence": 0.9, "ends_run": True} | fields
    return RoutingDecision.objects.create(ticket=open_ticket(), tier=tier, pool=pool, **fields)


def ticket_of(decision: RoutingDecision) -> Ticket:
    assert decision.ticket is not None
    return decision.ticket


def audit(decision: RoutingDecision) -> ReviewItem:
    item = audit_item_maybe_open(ticket=ticket_of(decision), decision=decision, share=1.0)
    assert item is not None
    return item


def audited(
    reviewer: User,
    tier: str,
    pool: Pool,
    verdict: str,
    *,
    to: Pool | None = None,
    when: timedelta | None = None,
) -> ReviewItem:
    """An automatic route to `pool`, audited and resolved with `verdict` (to pool `to`)."""
    decision = route(tier, pool)
    if when is not None:
        RoutingDecision.objects.filter(pk=decision.pk).update(created_at=timezone.now() - when)
    note = "not ours" if verdict == Verdict.NO_POOL else ""
    return review_item_resolve(
        item=audit(decision), reviewer=reviewer, verdict=verdict, pool=to, note=note
    )


@pytest.fixture
def sample(pools, reviewer) -> None:
    """Hand-counted: local 10 decisions, 4 audited, 3 right; llm 5 decisions, 4 audited,
    1 right; rules 2 decisions, none audited. Around them, what must not count."""
    billing, refund, technical = pools["billing"], pools["refund"], pools["technical"]
    # local: 3 of 4 right (confirmed twice, routed to the same pool once), 1 wrong.
    audited(reviewer, Tier.LOCAL, billing, Verdict.CONFIRMED)
    audited(reviewer, Tier.LOCAL, technical, Verdict.CONFIRMED)
    audited(reviewer, Tier.LOCAL, billing, Verdict.ROUTED, to=billing)
    audited(reviewer, Tier.LOCAL, billing, Verdict.ROUTED, to=refund)
    audit(route(Tier.LOCAL, billing))  # open: not yet a label
    for _ in range(5):
        route(Tier.LOCAL, technical)  # not sampled
    # llm: 1 of 4 right; "no pool" is wrong for a decision that routed.
    audited(reviewer, Tier.LLM, refund, Verdict.CONFIRMED)
    audited(reviewer, Tier.LLM, refund, Verdict.ROUTED, to=billing)
    audited(reviewer, Tier.LLM, technical, Verdict.ROUTED, to=billing)
    audited(reviewer, Tier.LLM, billing, Verdict.NO_POOL)
    # A review item (the router doubted) resolved against an llm route: not an audit.
    doubted = route(Tier.LLM, billing)
    ticket_status_set(ticket=ticket_of(doubted), status=Ticket.Status.IN_REVIEW)
    review_item_resolve(
        item=review_item_open(ticket=ticket_of(doubted), reason="low_confidence", decision=doubted),
        reviewer=reviewer,
        verdict=Verdict.ROUTED,
        pool=refund,
    )
    # rules: volume only.
    route(Tier.RULES, billing, confidence=1.0)
    route(Tier.RULES, billing, confidence=1.0)
    # Not automatic routes: neither volume nor audits.
    route(Tier.HANDOFF, billing, confidence=None)
    route(Tier.CLARIFY, refund, action=RoutingDecision.Action.CLARIFY)
    route(Tier.LLM, billing, ends_run=False)
    route(Tier.LLM, billing, dry_run=True)
    # Ten days ago: outside a one-week report.
    audited(reviewer, Tier.LOCAL, billing, Verdict.ROUTED, to=refund, when=timedelta(days=10))
    audited(reviewer, Tier.RULES, billing, Verdict.ROUTED, to=refund, when=timedelta(days=10))


def test_accuracy_per_tier_counts_only_resolved_audits(sample):
    report = routing_accuracy(since=timezone.now() - timedelta(days=7))
    rows = {row.tier: row for row in report.tiers}
    assert [row.tier for row in report.tiers] == [Tier.RULES, Tier.LOCAL, Tier.LLM]
    assert (rows[Tier.LOCAL].volume, rows[Tier.LOCAL].n, rows[Tier.LOCAL].correct) == (10, 4, 3)
    assert (rows[Tier.LLM].volume, rows[Tier.LLM].n, rows[Tier.LLM].correct) == (5, 4, 1)
    assert (rows[Tier.RULES].volume, rows[Tier.RULES].n, rows[Tier.RULES].correct) == (2, 0, 0)
    assert rows[Tier.LOCAL].accuracy == 0.75
    assert (rows[Tier.LOCAL].low, rows[Tier.LOCAL].high) == wilson_interval(3, 4)
    assert rows[Tier.LLM].accuracy == 0.25
    assert (rows[Tier.RULES].accuracy, rows[Tier.RULES].low, rows[Tier.RULES].high) == (
        None,
        0.0,
        1.0,
    )


def test_pooled_accuracy_is_every_resolved_audit_counted_together(sample):
    report = routing_accuracy(since=timezone.now() - timedelta(days=7))
    assert report.pooled == AccuracyEstimate(
        n=8, correct=4, accuracy=0.5, low=wilson_interval(4, 8)[0], high=wilson_interval(4, 8)[1]
    )
    assert (round(report.pooled.low, 4), round(report.pooled.high, 4)) == (0.2152, 0.7848)


def test_weighted_accuracy_weights_each_tier_by_its_volume(sample):
    report = routing_accuracy(since=timezone.now() - timedelta(days=7))
    weighted = report.weighted
    # local is 10 of the 15 covered decisions, llm 5: 2/3 * 3/4 + 1/3 * 1/4 = 7/12.
    assert weighted.accuracy == pytest.approx(7 / 12)
    # Kish: 1 / ((2/3)^2 / 4 + (1/3)^2 / 4) = 7.2 effective audits.
    assert weighted.effective_n == pytest.approx(7.2)
    assert (weighted.volume, weighted.covered_volume) == (17, 15)
    assert (round(weighted.low, 4), round(weighted.high, 4)) == (0.2621, 0.8466)
    # Local was audited at 4/10, llm at 4/5: pooling over-represents llm's lower accuracy.
    assert weighted.accuracy is not None
    assert report.pooled.accuracy is not None
    assert weighted.accuracy > report.pooled.accuracy


def test_the_period_is_the_audited_decisions_time(sample):
    everything = routing_accuracy()
    rows = {row.tier: row for row in everything.tiers}
    assert (rows[Tier.LOCAL].n, rows[Tier.LOCAL].correct, rows[Tier.LOCAL].volume) == (5, 3, 11)
    assert (rows[Tier.RULES].n, rows[Tier.RULES].correct, rows[Tier.RULES].volume) == (1, 0, 3)
    assert everything.pooled.n == 10
    old = routing_accuracy(until=timezone.now() - timedelta(days=7))
    assert [(row.tier, row.n, row.volume) for row in old.tiers] == [
        (Tier.RULES, 1, 1),
        (Tier.LOCAL, 1, 1),
    ]


def test_with_equal_shares_weighted_and_pooled_agree(pools, reviewer):
    billing, refund = pools["billing"], pools["refund"]
    # Half of each tier audited: local 3 of 6 audited (2 right), llm 2 of 4 (1 right).
    for verdict in (Verdict.CONFIRMED, Verdict.CONFIRMED, Verdict.NO_POOL):
        audited(reviewer, Tier.LOCAL, billing, verdict)
    audited(reviewer, Tier.LLM, billing, Verdict.CONFIRMED)
    audited(reviewer, Tier.LLM, billing, Verdict.ROUTED, to=refund)
    for tier, count in ((Tier.LOCAL, 3), (Tier.LLM, 2)):
        for _ in range(count):
            route(tier, billing)
    report = routing_accuracy()
    assert report.pooled.accuracy == pytest.approx(3 / 5)
    assert report.weighted.accuracy == pytest.approx(report.pooled.accuracy)
    assert report.weighted.effective_n == pytest.approx(report.pooled.n)
    assert report.weighted.low == pytest.approx(report.pooled.low)
    assert report.weighted.high == pytest.approx(report.pooled.high)


def test_without_resolved_audits_there_is_no_estimate(pools):
    audit(route(Tier.LOCAL, pools["billing"]))  # open only
    report = routing_accuracy()
    assert report.pooled == AccuracyEstimate(n=0, correct=0, accuracy=None, low=0.0, high=1.0)
    assert report.weighted.accuracy is None
    assert (report.weighted.volume, report.weighted.covered_volume) == (1, 0)


# --- the queue's counts ---------------------------------------------------------------------


def test_queue_stats_count_open_items_by_kind_and_reason_with_the_oldest_age(pools, reviewer):
    now = timezone.now()
    low = review_item_open(ticket=open_ticket(), reason="low_confidence")
    review_item_open(ticket=open_ticket(), reason="low_confidence")
    review_item_open(ticket=open_ticket(), reason="no_pool_fits")
    sampled = audit(route(Tier.LOCAL, pools["billing"]))
    review_item_resolve(
        item=audit(route(Tier.LLM, pools["billing"])), reviewer=reviewer, verdict="confirmed"
    )
    ReviewItem.objects.filter(pk=low.pk).update(created_at=now - timedelta(hours=3))
    ReviewItem.objects.filter(pk=sampled.pk).update(created_at=now - timedelta(hours=1))

    stats = review_queue_stats(now=now)

    assert stats.open == 4
    review, audits = stats.kinds["review"], stats.kinds["audit"]
    assert (review.open, review.by_reason) == (3, {"low_confidence": 2, "no_pool_fits": 1})
    assert (audits.open, audits.by_reason) == (1, {"audit": 1})
    assert review.oldest_open_age == timedelta(hours=3)
    assert audits.oldest_open_age == timedelta(hours=1)
    assert stats.oldest_open_age == timedelta(hours=3)


def test_queue_stats_of_an_empty_queue(db):
    stats = review_queue_stats()
    assert stats.open == 0
    assert stats.oldest_open_age is None
    assert {kind: s.open for kind, s in stats.kinds.items()} == {"review": 0, "audit": 0}

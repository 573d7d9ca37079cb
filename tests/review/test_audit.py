"""Audit sampling: a share of confident automatic routes, drawn per tier, becomes an audit item
that never holds the ticket."""

import math
import random
from collections import Counter

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache

from apps.chat.models import Conversation, Customer, Message
from apps.chat.services import conversation_create
from apps.flows.messages import message_post
from apps.flows.routing import ticket_human_request, ticket_route
from apps.orchestrator.models import RoutingDecision, RoutingRule
from apps.pools.models import Pool
from apps.pools.presence import agent_presence_connect
from apps.pools.services import pool_membership_set
from apps.review.audit import audit_item_maybe_open
from apps.review.models import ReviewItem
from apps.review.services import review_item_resolve
from apps.tickets.models import Ticket
from tests.orchestrator.conftest import route_reply

pytestmark = pytest.mark.django_db

Tier = RoutingDecision.Tier
Action = RoutingDecision.Action
AUDIT = ReviewItem.Kind.AUDIT


@pytest.fixture(autouse=True)
def _clear_decision_cache():
    cache.clear()


def open_ticket(text: str = "Where is my invoice?") -> Ticket:
    """A customer's first message opens a ticket (routing waits for commit, never reached)."""
    conversation = conversation_create().conversation
    message_post(conversation=conversation, text=text, sender=Message.Sender.CUSTOMER)
    return Ticket.objects.get(conversation=conversation)


def decision(
    ticket: Ticket,
    *,
    tier: str = Tier.LLM,
    action: str = Action.ROUTE,
    pool: Pool | None = None,
    confidence: float | None = 0.9,
    ends_run: bool = True,
    dry_run: bool = False,
) -> RoutingDecision:
    """A recorded routing decision (decisions are only ever written by routing itself)."""
    return RoutingDecision.objects.create(
        ticket=ticket,
        tier=tier,
        action=action,
        pool=pool,
        confidence=confidence,
        ends_run=ends_run,
        dry_run=dry_run,
    )


def audits() -> list[ReviewItem]:
    return list(ReviewItem.objects.filter(kind=AUDIT))


def ticket_of(decision: RoutingDecision) -> Ticket:
    assert decision.ticket is not None
    return decision.ticket


# --- rate and stratification ------------------------------------------------------------------


def synthetic_routes(
    split: dict[str, int], pool: Pool, rng: random.Random
) -> list[RoutingDecision]:
    """`split[tier]` final automatic routes per tier, interleaved at random, one ticket each.

    Bulk-inserted: thousands of tickets through message_post take ~20 s and prove nothing here.
    """
    total = sum(split.values())
    customer = Customer.objects.create(name="Load")
    conversations = Conversation.objects.bulk_create(
        Conversation(customer=customer, token_hash=f"{i:064x}") for i in range(total)
    )
    tickets = Ticket.objects.bulk_create(Ticket(conversation=c) for c in conversations)
    tiers = [tier for tier, count in split.items() for _ in range(count)]
    rng.shuffle(tiers)
    return RoutingDecision.objects.bulk_create(
        RoutingDecision(
            ticket=ticket,
            tier=tier,
            action=Action.ROUTE,
            pool=pool,
            confidence=1.0 if tier == Tier.RULES else 0.9,
            ends_run=True,
        )
        for ticket, tier in zip(tickets, tiers, strict=True)
    )


@pytest.mark.parametrize(
    ("split", "seed"),
    [
        # 80/15/5, rotated so that every tier is once large enough for a tight bound.
        ({Tier.LOCAL: 4000, Tier.RULES: 750, Tier.LLM: 250}, 1),
        ({Tier.RULES: 4000, Tier.LLM: 750, Tier.LOCAL: 250}, 2),
        ({Tier.LLM: 4000, Tier.LOCAL: 750, Tier.RULES: 250}, 3),
    ],
    ids=["local-heavy", "rules-heavy", "llm-heavy"],
)
def test_each_tier_is_audited_at_the_share_whatever_the_traffic_split(pools, split, seed):
    share = 0.02
    rng = random.Random(seed)
    routes = synthetic_routes(split, pools["billing"], rng)
    for route in routes:
        audit_item_maybe_open(ticket=ticket_of(route), decision=route, share=share, rng=rng)
    audited = Counter(item.tier for item in audits())
    assert sum(audited.values()) > 0
    for tier, volume in split.items():
        sd = math.sqrt(share * (1 - share) / volume)  # binomial SD of the audited share
        assert abs(audited[tier] / volume - share) <= 4 * sd, (tier, audited[tier], volume)
    assert set(audited) <= set(split)


def test_share_zero_audits_nothing(pools):
    routes = [decision(open_ticket(), pool=pools["billing"]) for _ in range(50)]
    for route in routes:
        assert audit_item_maybe_open(ticket=ticket_of(route), decision=route, share=0.0) is None
    assert audits() == []


@pytest.mark.parametrize("tier", [Tier.RULES, Tier.CACHE, Tier.LOCAL, Tier.LLM, Tier.ESCALATION])
def test_share_one_audits_every_confident_automatic_route_with_its_tier(pools, tier):
    routes = [decision(open_ticket(), tier=tier, pool=pools["technical"]) for _ in range(5)]
    for route in routes:
        audit_item_maybe_open(ticket=ticket_of(route), decision=route, share=1.0)
    items = audits()
    assert [item.decision_id for item in items] == [route.pk for route in routes]
    for item in items:
        assert (item.kind, item.reason, item.tier) == (AUDIT, ReviewItem.Reason.AUDIT, tier)
        assert item.status == ReviewItem.Status.OPEN
        assert item.suggested_pool == pools["technical"]
        assert item.candidates == [{"pool": "technical", "score": 0.9}]


@pytest.mark.parametrize(
    "spec",
    [
        {"tier": Tier.HANDOFF, "confidence": None},
        {"tier": Tier.CLARIFY, "action": Action.CLARIFY},
        {"tier": Tier.REVIEW, "action": Action.REVIEW, "confidence": None, "pool": False},
        {"tier": Tier.LLM, "ends_run": False},
        {"tier": Tier.LLM, "action": Action.ESCALATE, "pool": False},
        {"tier": Tier.LLM, "confidence": None},
        {"tier": Tier.LLM, "dry_run": True},
    ],
    ids=["handoff", "clarify", "review", "run-not-ended", "escalate", "no-confidence", "dry-run"],
)
def test_decisions_that_are_not_confident_automatic_routes_are_never_sampled(pools, spec):
    spec = dict(spec)
    pool = None if spec.pop("pool", True) is False else pools["billing"]
    ticket = open_ticket()
    attempt = decision(ticket, pool=pool, **spec)
    assert audit_item_maybe_open(ticket=ticket, decision=attempt, share=1.0) is None
    assert audits() == []


def test_without_a_seeded_rng_the_draw_uses_the_system_random_source(pools):
    ticket = open_ticket()
    route = decision(ticket, pool=pools["billing"])
    item = audit_item_maybe_open(ticket=ticket, decision=route, share=1.0)
    assert item is not None
    assert item.decision == route


def test_a_configured_audit_seed_reproduces_the_draws(pools, settings):
    from apps.review import audit

    def sampled() -> list[bool]:
        audit._SEEDED.clear()
        ReviewItem.objects.filter(kind=AUDIT).delete()
        picks = []
        for _ in range(40):
            ticket = open_ticket()
            route = decision(ticket, pool=pools["billing"])
            picks.append(
                audit_item_maybe_open(ticket=ticket, decision=route, share=0.5) is not None
            )
        return picks

    settings.REVIEW_AUDIT_SEED = 7
    first = sampled()
    assert first == sampled()
    assert 5 < sum(first) < 35  # still a draw at the share, not all or nothing
    settings.REVIEW_AUDIT_SEED = 8
    assert sampled() != first


def test_production_settings_refuse_an_audit_seed(monkeypatch):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv("SECRET_KEY", "x" * 50)
    monkeypatch.setenv("ALLOWED_HOSTS", "desk.example.com")
    monkeypatch.setenv("REVIEW_AUDIT_SEED", "1")
    with pytest.raises(ImproperlyConfigured, match="REVIEW_AUDIT_SEED"):
        importlib.reload(importlib.import_module("supportdesk.settings.production"))


def test_a_decision_of_another_ticket_is_refused(pools):
    route = decision(open_ticket(), pool=pools["billing"])
    with pytest.raises(ValueError, match="does not belong"):
        audit_item_maybe_open(ticket=open_ticket(), decision=route, share=1.0)


def test_one_open_audit_per_ticket_and_no_decision_audited_twice(pools):
    reviewer = User.objects.create_user("rita", is_staff=True, is_superuser=True)
    ticket = open_ticket()
    first = decision(ticket, pool=pools["billing"])
    item = audit_item_maybe_open(ticket=ticket, decision=first, share=1.0)
    assert item is not None
    # Routed again while the first audit is open: the ticket keeps its one open audit.
    second = decision(ticket, pool=pools["refund"])
    assert audit_item_maybe_open(ticket=ticket, decision=second, share=1.0) is None
    review_item_resolve(item=item, reviewer=reviewer, verdict=ReviewItem.Verdict.CONFIRMED)
    assert audit_item_maybe_open(ticket=ticket, decision=first, share=1.0) is None
    again = audit_item_maybe_open(ticket=ticket, decision=second, share=1.0)
    assert again is not None
    assert again.decision == second
    assert ReviewItem.objects.filter(kind=AUDIT, ticket=ticket).count() == 2


# --- through routing ------------------------------------------------------------------------


def billing_agent(pools) -> User:
    agent = User.objects.create_user("ann", is_staff=True)
    pool_membership_set(user=agent, pools=[pools["billing"]], capacity=5)
    agent_presence_connect(user=agent)
    return agent


def ticket_state(ticket: Ticket) -> tuple[object, ...]:
    ticket.refresh_from_db()
    return (
        ticket.status,
        ticket.pool_id,
        ticket.assignee_id,
        ticket.queued_at,
        ticket.updated_at,
        ticket.activities.count(),
        ticket.conversation.messages.count(),
    )


def test_an_audit_does_not_hold_move_or_reassign_the_ticket(pools, settings):
    settings.REVIEW_AUDIT_SHARE = 0.0  # routing itself must not draw this ticket first
    agent = billing_agent(pools)
    RoutingRule.objects.create(name="vat", pattern="VAT number", pool=pools["billing"])
    ticket = open_ticket("How do I add my VAT number to invoices?")
    route = ticket_route(ticket=ticket)
    assert route is not None
    before = ticket_state(ticket)
    assert before[:3] == (Ticket.Status.ASSIGNED, pools["billing"].pk, agent.pk)

    item = audit_item_maybe_open(ticket=ticket, decision=route, share=1.0)

    assert item is not None
    assert ticket_state(ticket) == before


@pytest.mark.parametrize(
    ("tier", "text", "pool"),
    [
        (Tier.RULES, "How do I add my VAT number to invoices?", "billing"),
        (Tier.LOCAL, "I forgot my password and the reset email never arrives", "technical"),
        (Tier.LLM, "Why is there a second charge on my card this month?", "billing"),
    ],
)
def test_routing_with_share_one_opens_exactly_one_audit_item_with_the_decisions_tier(
    pools, settings, request, tier, text, pool
):
    settings.REVIEW_AUDIT_SHARE = 1.0
    if tier == Tier.RULES:
        RoutingRule.objects.create(name="vat", pattern="VAT number", pool=pools["billing"])
    elif tier == Tier.LOCAL:
        request.getfixturevalue("local_model")
    else:
        request.getfixturevalue("llm").enqueue(route_reply("billing", 0.93))
    ticket = open_ticket(text)

    final = ticket_route(ticket=ticket)

    assert final is not None
    assert final.tier == tier
    ticket.refresh_from_db()
    assert (ticket.status, ticket.pool) == (Ticket.Status.QUEUED, pools[pool])
    (item,) = audits()
    assert (item.ticket, item.decision, item.tier) == (ticket, final, tier)
    assert item.suggested_pool == pools[pool]
    assert item.candidates[0]["pool"] == pool
    assert not ReviewItem.objects.filter(kind=ReviewItem.Kind.REVIEW).exists()


def test_the_local_models_audit_lists_the_other_pools_it_scored(pools, settings, request):
    settings.REVIEW_AUDIT_SHARE = 1.0
    request.getfixturevalue("local_model")
    ticket_route(ticket=open_ticket("I forgot my password and the reset email never arrives"))
    (item,) = audits()
    slugs = [candidate["pool"] for candidate in item.candidates]
    scores = [candidate["score"] for candidate in item.candidates]
    assert slugs[0] == "technical"
    assert set(slugs) <= set(pools)
    assert len(slugs) > 1
    assert scores == sorted(scores, reverse=True)


def test_routing_with_share_zero_opens_no_audit(pools, settings):
    settings.REVIEW_AUDIT_SHARE = 0.0
    RoutingRule.objects.create(name="vat", pattern="VAT number", pool=pools["billing"])
    ticket_route(ticket=open_ticket("How do I add my VAT number to invoices?"))
    assert audits() == []


def test_a_ticket_sent_to_review_gets_no_audit(pools, settings):
    settings.REVIEW_AUDIT_SHARE = 1.0  # no API key in tests: a doubtful text goes to review
    ticket = open_ticket("Something odd happened with my account yesterday")
    ticket_route(ticket=ticket)
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.IN_REVIEW
    assert audits() == []
    assert ReviewItem.objects.filter(ticket=ticket, kind=ReviewItem.Kind.REVIEW).count() == 1


def test_a_human_handoff_is_not_audited_even_when_a_rule_found_the_pool(pools, settings):
    settings.REVIEW_AUDIT_SHARE = 1.0
    RoutingRule.objects.create(name="vat", pattern="VAT number", pool=pools["billing"])
    ticket = open_ticket("How do I add my VAT number to invoices?")
    ticket_human_request(conversation=ticket.conversation)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.pool) == (Ticket.Status.QUEUED, pools["billing"])
    assert ticket.decisions.get(ends_run=True).tier == Tier.HANDOFF
    assert audits() == []

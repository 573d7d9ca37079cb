"""A month-like slice of routing history built row by row, kept beside the rows it made so
tests can compute every report figure again in plain Python."""

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from rest_framework.test import APIClient

from apps.chat.services import conversation_create
from apps.orchestrator.models import RoutingDecision
from apps.pools.models import Pool
from apps.review.models import ReviewItem, RoutingLabel
from apps.tickets.models import Ticket
from tests.fakes.fixtures import messages_api  # noqa: F401  (a fixture)
from tests.orchestrator.conftest import llm, pools  # noqa: F401  (fixtures)

T = RoutingDecision.Tier
A = RoutingDecision.Action
HAIKU, SONNET = "claude-haiku-4-5", "claude-sonnet-4-6"
START, END = date(2026, 3, 2), date(2026, 3, 6)
DAYS = [START + timedelta(days=i) for i in range((END - START).days + 1)]


@dataclass
class Step:
    tier: str
    action: str
    ends_run: bool = False
    confidence: float | None = None
    model: str = ""
    routes: bool = False  # this step carries the ticket's pool
    valid: bool = True
    error: str = ""


# Trails as the pipeline writes them (docs/orchestrator.md); `routes` marks the deciding step.
TEMPLATES: dict[str, list[Step]] = {
    "rules": [Step(T.RULES, A.ROUTE, True, 1.0, routes=True)],
    "cache": [Step(T.CACHE, A.ROUTE, True, 0.93, routes=True)],
    "local": [Step(T.LOCAL, A.ROUTE, True, 0.88, routes=True)],
    "llm": [Step(T.LOCAL, A.PASS, confidence=0.41), Step(T.LLM, A.ROUTE, True, 0.82, HAIKU, True)],
    "escalation": [
        Step(T.LOCAL, A.PASS, confidence=0.33),
        Step(T.LLM, A.PASS, confidence=0.61, model=HAIKU),
        Step(T.ESCALATION, A.ROUTE, True, 0.91, SONNET, True),
    ],
    "llm_error": [
        Step(T.LLM, A.PASS, model=HAIKU, valid=False, error="provider: timeout"),
        Step(T.ESCALATION, A.ROUTE, True, 0.97, SONNET, True),
    ],
    "review": [
        Step(T.LOCAL, A.PASS, confidence=0.12),
        Step(T.LLM, A.PASS, confidence=0.35, model=HAIKU),
        Step(T.REVIEW, A.REVIEW, True),
    ],
    "clarify": [
        Step(T.LOCAL, A.ROUTE, confidence=0.9, routes=True),
        Step(T.CLARIFY, A.CLARIFY, True),
    ],
    "handoff": [Step(T.HANDOFF, A.ROUTE, True, routes=True)],
    # The local model is sure no pool fits: straight to review, no review step.
    "local_no_pool": [Step(T.LOCAL, A.REVIEW, True, 0.95)],
}
TO_REVIEW = ("review", "local_no_pool")


@dataclass
class TicketSpec:
    ticket: Ticket
    created: datetime
    template: str
    pool: str | None  # the ticket's pool now
    decisions: list[RoutingDecision] = field(default_factory=list)
    rerouted: bool = False
    sla_breached_at: datetime | None = None


@dataclass
class History:
    specs: list[TicketSpec]
    decisions: list[RoutingDecision]  # every real decision, in any period
    dry_runs: list[RoutingDecision]
    labels: list[RoutingLabel]
    audits: list[ReviewItem]
    open_items: list[ReviewItem]
    pools: dict[str, Pool]

    def in_period(self, when: datetime, start: date = START, end: date = END) -> bool:
        return start <= when.date() <= end


def _at(day: date, rng: random.Random) -> datetime:
    return datetime(
        day.year, day.month, day.day, rng.randrange(0, 24), rng.randrange(60), tzinfo=UTC
    )


def _decision(
    *,
    ticket: Ticket | None,
    step: Step,
    pool: Pool | None,
    when: datetime,
    request_id: str,
    rng: random.Random,
    dry_run: bool = False,
    text: str = "my invoice is wrong",
) -> RoutingDecision:
    calls_model = step.tier in (T.LLM, T.ESCALATION)
    tokens = (rng.randrange(300, 900), rng.randrange(20, 80)) if calls_model else (0, 0)
    cost = (
        Decimal(tokens[0] * (3 if step.tier == T.ESCALATION else 1) + tokens[1] * 5)
        / Decimal(1_000_000)
        if calls_model
        else Decimal(0)
    )
    decision = RoutingDecision.objects.create(
        ticket=ticket,
        request_id=request_id,
        tier=step.tier,
        model=step.model,
        action=step.action,
        pool=pool if step.routes or step.tier in (T.CLARIFY, T.HANDOFF) else None,
        confidence=step.confidence,
        valid=step.valid,
        error=step.error,
        latency_ms=round(rng.uniform(200, 900) if calls_model else rng.uniform(0.01, 8), 3),
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cache_read_tokens=rng.randrange(0, 200) if calls_model else 0,
        cost_usd=cost,
        ends_run=step.ends_run,
        dry_run=dry_run,
        redacted=text,
    )
    RoutingDecision.objects.filter(pk=decision.pk).update(created_at=when)
    decision.created_at = when
    return decision


@pytest.fixture
def history(db, pools) -> History:  # noqa: F811
    """~60 tickets over the period and around it, with labels, audits, open review items, SLA
    breaches and dry runs (which reports leave out)."""
    rng = random.Random(6)
    slugs = sorted(pools)
    specs: list[TicketSpec] = []
    all_decisions: list[RoutingDecision] = []
    # Days before and after the period too: their rows must not count.
    days = [START - timedelta(days=1), *DAYS, END + timedelta(days=1)]
    for n in range(64):
        day = days[n % len(days)]
        template = rng.choice(list(TEMPLATES))
        pool_slug = None if template in TO_REVIEW else rng.choice(slugs)
        pool = pools[pool_slug] if pool_slug else None
        conversation = conversation_create(name=f"C{n}").conversation
        status = {
            "review": Ticket.Status.IN_REVIEW,
            "local_no_pool": Ticket.Status.IN_REVIEW,
            "clarify": Ticket.Status.AWAITING_CUSTOMER,
        }.get(template, Ticket.Status.QUEUED)
        ticket = Ticket.objects.create(conversation=conversation, status=status, pool=pool)
        created = _at(day, rng)
        Ticket.objects.filter(pk=ticket.pk).update(created_at=created)
        spec = TicketSpec(ticket=ticket, created=created, template=template, pool=pool_slug)
        when = created
        request_id = f"00000000-0000-0000-0000-{n:012d}"
        for step in TEMPLATES[template]:
            when += timedelta(seconds=1)
            spec.decisions.append(
                _decision(
                    ticket=ticket, step=step, pool=pool, when=when, request_id=request_id, rng=rng
                )
            )
        specs.append(spec)
        all_decisions += spec.decisions

    # A ticket opened the day before the period that the customer answered in it: its routing
    # (latest final decision) counts in the period, its creation does not.
    conversation = conversation_create(name="Late").conversation
    late_pool = pools["refund"]
    late = Ticket.objects.create(
        conversation=conversation, status=Ticket.Status.QUEUED, pool=late_pool
    )
    created = datetime(START.year, START.month, START.day, tzinfo=UTC) - timedelta(hours=1)
    Ticket.objects.filter(pk=late.pk).update(created_at=created)
    spec = TicketSpec(ticket=late, created=created, template="local", pool="refund")
    for i, (step, when) in enumerate(
        [
            (TEMPLATES["clarify"][0], created + timedelta(seconds=1)),
            (TEMPLATES["clarify"][1], created + timedelta(seconds=2)),
            (TEMPLATES["local"][0], created + timedelta(hours=2)),
        ]
    ):
        spec.decisions.append(
            _decision(
                ticket=late,
                step=step,
                pool=late_pool,
                when=when,
                request_id=f"00000000-0000-0000-0001-{i // 2:012d}",
                rng=rng,
            )
        )
    specs.append(spec)
    all_decisions += spec.decisions

    # Dry runs (POST /route/) in the period: never in a report.
    dry_runs = [
        _decision(
            ticket=None,
            step=TEMPLATES["llm"][1],
            pool=pools["billing"],
            when=_at(DAYS[1], rng),
            request_id=f"00000000-0000-0000-0002-{i:012d}",
            rng=rng,
            dry_run=True,
        )
        for i in range(3)
    ]

    # Agents moved some routed tickets to another pool.
    labels: list[RoutingLabel] = []
    routed = [s for s in specs if s.decisions[-1].action == A.ROUTE]
    for spec in routed[::5]:
        new = next(slug for slug in slugs if slug != spec.pool)
        labels.append(
            RoutingLabel.objects.create(
                ticket=spec.ticket,
                decision=spec.decisions[-1],
                source=RoutingLabel.Source.REROUTE,
                previous_pool=pools[spec.pool] if spec.pool else None,
                pool=pools[new],
            )
        )
        spec.rerouted, spec.pool = True, new
        Ticket.objects.filter(pk=spec.ticket.pk).update(pool=pools[new])

    # Audits of automatic routes, resolved (right or wrong) or still open.
    audits: list[ReviewItem] = []
    automatic = [
        s
        for s in routed
        if s.decisions[-1].tier in (T.RULES, T.CACHE, T.LOCAL, T.LLM, T.ESCALATION)
        and not s.rerouted
    ]
    for i, spec in enumerate(automatic[::3]):
        decision = spec.decisions[-1]
        correct = i % 4 != 0
        verdict_pool = decision.pool if correct else pools[next(s for s in slugs if s != spec.pool)]
        audits.append(
            ReviewItem.objects.create(
                ticket=spec.ticket,
                kind=ReviewItem.Kind.AUDIT,
                reason=ReviewItem.Reason.AUDIT,
                decision=decision,
                tier=decision.tier,
                status=ReviewItem.Status.RESOLVED,
                verdict=ReviewItem.Verdict.CONFIRMED if correct else ReviewItem.Verdict.ROUTED,
                verdict_pool=verdict_pool,
            )
        )
        labels.append(
            RoutingLabel.objects.create(
                ticket=spec.ticket,
                decision=decision,
                source=RoutingLabel.Source.AUDIT,
                pool=verdict_pool,
            )
        )

    # Tickets waiting in review: open items; one resolved review says "no pool fits".
    open_items: list[ReviewItem] = []
    reviews = [s for s in specs if s.template in TO_REVIEW]
    no_pool = next(s for s in reviews if START <= s.created.date() <= END)
    for spec in reviews:
        if spec is no_pool:
            continue
        open_items.append(
            ReviewItem.objects.create(
                ticket=spec.ticket,
                reason=ReviewItem.Reason.LOW_CONFIDENCE,
                decision=spec.decisions[-1],
                tier=T.REVIEW,
            )
        )
    labels.append(
        RoutingLabel.objects.create(
            ticket=no_pool.ticket,
            decision=no_pool.decisions[-1],
            source=RoutingLabel.Source.REVIEW,
            pool=None,
        )
    )

    # SLA breaches: some in the period, one after it.
    for i, spec in enumerate(s for s in specs if s.pool is not None):
        if i % 6 == 0:
            spec.sla_breached_at = spec.created + timedelta(hours=4)
            Ticket.objects.filter(pk=spec.ticket.pk).update(sla_breached_at=spec.sla_breached_at)

    return History(
        specs=specs,
        decisions=all_decisions,
        dry_runs=dry_runs,
        labels=labels,
        audits=audits,
        open_items=open_items,
        pools=pools,
    )


def _staff(username: str, group: str | None = None):
    user = get_user_model().objects.create_user(username=username, password="pw", is_staff=True)
    if group == "Managers":
        managers, _ = Group.objects.get_or_create(name="Managers")
        managers.permissions.add(
            Permission.objects.get(codename="view_reports", content_type__app_label="reports")
        )
        user.groups.add(managers)
    return user


@pytest.fixture
def manager(db):
    return _staff("manager", "Managers")


@pytest.fixture
def agent(db):
    return _staff("agent")


@pytest.fixture
def manager_api(manager) -> APIClient:
    client = APIClient()
    client.force_authenticate(manager)
    return client

"""Write-side operations of the orchestrator: route tickets, record decisions, train models."""

import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.chat.models import Message
from apps.core.errors import ValidationFailed
from apps.core.logging import log_context
from apps.core.sql import row_save, rows_insert, rows_where
from apps.orchestrator import selectors
from apps.orchestrator.fields import field_label, human_requested_in
from apps.orchestrator.metrics import routing_decisions_record
from apps.orchestrator.models import (
    PromptVersion,
    RoutingDecision,
    RoutingRule,
)
from apps.orchestrator.outcomes import DecisionDraft, ReviewReason, RoutingOutcome
from apps.orchestrator.pipeline import RoutingPipeline
from apps.orchestrator.prompts.selectors import prompt_for_ticket
from apps.orchestrator.providers.base import BatchProvider, RouterProvider
from apps.orchestrator.validation import input_validate
from apps.pools.models import Pool
from apps.tickets.models import Ticket

if TYPE_CHECKING:
    from apps.orchestrator.providers.anthropic import AnthropicProvider

logger = logging.getLogger(__name__)


def _anthropic_provider() -> "type[AnthropicProvider]":
    """The SDK's provider class, imported on first use: the `anthropic` package takes about a
    second to import, which a process without a key never pays (a process with one imports it
    at start: apps.py)."""
    from apps.orchestrator.providers.anthropic import AnthropicProvider

    return AnthropicProvider


def router_provider() -> "AnthropicProvider | None":
    """The configured LLM provider, or None without an API key (LLM tiers are then skipped)."""
    if not settings.ANTHROPIC_API_KEY:
        return None
    return _anthropic_provider()(
        api_key=settings.ANTHROPIC_API_KEY,
        base_url=settings.ANTHROPIC_BASE_URL,
        timeout=settings.ROUTER_TIMEOUT_SECONDS,
        max_retries=settings.ROUTER_MAX_RETRIES,
    )


def draft_provider() -> "AnthropicProvider | None":
    """The provider for AI draft replies (a longer answer from the larger model: its own
    timeout), or None without an API key."""
    if not settings.ANTHROPIC_API_KEY:
        return None
    return _anthropic_provider()(
        api_key=settings.ANTHROPIC_API_KEY,
        base_url=settings.ANTHROPIC_BASE_URL,
        timeout=settings.DRAFT_TIMEOUT_SECONDS,
        max_retries=settings.ROUTER_MAX_RETRIES,
    )


def batch_provider() -> BatchProvider | None:
    """The Message Batches provider, or None without an API key."""
    return router_provider()


def pipeline_build(
    *,
    provider: RouterProvider | None = None,
    write_cache: bool = True,
    clarify_allowed: bool = True,
    use_llm: bool = True,
    ticket_id: int | None = None,
    prompt: PromptVersion | None = None,
    read_cache: bool = True,
) -> RoutingPipeline:
    """A pipeline over the current pools, rules, prompt and local model.

    The prompt is `prompt` when given (offline comparison), else the ticket's arm of a running
    A/B test, else the active version (`prompts.selectors.prompt_for_ticket`).
    """
    if use_llm and provider is None:
        provider = router_provider()
    pools = selectors.routing_pools()
    return RoutingPipeline(
        pools=pools,
        rules=selectors.rule_list_active(pools=pools),
        prompt=prompt or prompt_for_ticket(ticket_id=ticket_id),
        local=selectors.local_tier_active(),
        provider=provider if use_llm else None,
        write_cache=write_cache,
        clarify_allowed=clarify_allowed,
        read_cache=read_cache,
    )


def _decisions_save(
    outcome: RoutingOutcome, *, ticket: Ticket | None, request_id: uuid.UUID, dry_run: bool
) -> list[RoutingDecision]:
    rows = [
        _decision_from_draft(draft, outcome, ticket, request_id, dry_run) for draft in outcome.trail
    ]
    saved = rows_insert(rows)
    routing_decisions_record(saved)  # Prometheus counters, once the rows are committed
    return saved


def _decision_from_draft(
    draft: DecisionDraft,
    outcome: RoutingOutcome,
    ticket: Ticket | None,
    request_id: uuid.UUID,
    dry_run: bool,
) -> RoutingDecision:
    return RoutingDecision(
        ticket=ticket,
        request_id=request_id,
        tier=draft.tier,
        model=draft.model,
        prompt_version=draft.prompt_version,
        model_version=draft.model_version,
        rule=draft.rule,
        redacted=outcome.redacted,
        raw_output=draft.raw_output,
        action=draft.action,
        pool=draft.pool,
        intent=draft.intent,
        confidence=draft.confidence,
        reason=draft.reason[:500],
        valid=draft.valid,
        error=draft.error[:500],
        latency_ms=round(draft.latency_ms, 3),
        attempts=draft.attempts,
        input_tokens=draft.usage.input_tokens,
        output_tokens=draft.usage.output_tokens,
        cache_read_tokens=draft.usage.cache_read_tokens,
        cache_creation_tokens=draft.usage.cache_creation_tokens,
        cost_usd=draft.cost,
        ends_run=draft.ends_run,
        dry_run=dry_run,
    )


def clarify_question(*, pool_name: str, fields: Sequence[str]) -> str:
    """What the bot asks when a pool needs facts the customer has not given."""
    wanted = " and ".join(field_label(name) for name in fields)
    return f"To pass your request to our {pool_name} team we need your {wanted}. Could you send it?"


@dataclass(frozen=True)
class RoutedTicket:
    """What a routing run decided, handed to the caller's `apply` inside the transaction that
    recorded it: the ticket (locked, its routing facts saved), the outcome and its decisions."""

    ticket: Ticket
    outcome: RoutingOutcome
    decisions: list[RoutingDecision]
    human: bool  # the customer asked for a person


OutcomeApply = Callable[[RoutedTicket], None]


def ticket_route(
    *,
    ticket: Ticket,
    apply: OutcomeApply,
    provider: RouterProvider | None = None,
    run_id: str | None = None,
) -> RoutingDecision | None:
    """Route a ticket through the tiers, record every attempt, and let `apply` move the ticket
    (apps/flows/routing.py: queue it, ask for a fact, or open review) in the same transaction.

    Returns the deciding decision (the attempt that ended the run), or None when the ticket no
    longer needs routing or another run is routing it. LLM calls happen outside any database
    transaction. A customer who asked for a person skips the LLM tiers and any clarifying
    question (`_handoff`). `run_id` names the run for the ticket's routing lease: a Celery task
    passes its id, so a redelivery of the same task (its worker died) takes its lease over at
    once.
    """
    with log_context(ticket_id=ticket.pk):
        return _ticket_route(
            ticket=ticket, apply=apply, provider=provider, run_id=run_id or uuid.uuid4().hex
        )


def _lease_take(ticket_id: int, run_id: str) -> bool:
    """Hold the ticket for this run for ROUTING_LEASE_SECONDS: no other run holds an unexpired
    lease on it (the same run, redelivered, may take its own lease back)."""
    now = timezone.now()
    free = Q(routing_lease_until__isnull=True) | Q(routing_lease_until__lt=now)
    return bool(
        Ticket.objects.filter(free | Q(routing_lease_owner=run_id), pk=ticket_id).update(
            routing_lease_owner=run_id,
            routing_lease_until=now + timedelta(seconds=settings.ROUTING_LEASE_SECONDS),
        )
    )


def _lease_release(ticket_id: int, run_id: str) -> None:
    """Give the ticket up (a run that failed): the next task need not wait for the lease."""
    with contextlib.suppress(DatabaseError):  # if the database failed, the lease runs out
        Ticket.objects.filter(pk=ticket_id, routing_lease_owner=run_id).update(
            routing_lease_owner="", routing_lease_until=None
        )


def _needs_routing(ticket: Ticket) -> bool:
    """Whether a routing run now has something to decide: the ticket waits in `routing`, or it
    waits for the customer's answer and the customer answered (or asked for a person) since
    it was last routed. A late duplicate task (a redelivery, the stuck sweep) meets a ticket
    waiting for an answer that has not come, and must not route it on the question's behalf.
    """
    if ticket.status == Ticket.Status.ROUTING:
        return True
    if ticket.status != Ticket.Status.AWAITING_CUSTOMER:
        return False
    if ticket.human_requested:
        return True
    asked_at = (
        ticket.decisions.filter(dry_run=False)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return (
        asked_at is None
        or ticket.messages.filter(sender=Message.Sender.CUSTOMER, created_at__gt=asked_at).exists()
    )


def _ticket_route(
    *, ticket: Ticket, apply: OutcomeApply, provider: RouterProvider | None, run_id: str
) -> RoutingDecision | None:
    ticket = _ticket_read(ticket.pk)
    if not _needs_routing(ticket):
        return None
    if not _lease_take(ticket.pk, run_id):
        logger.info("ticket %s is being routed by another run", ticket.pk)
        return None
    try:
        return _ticket_route_leased(ticket=ticket, apply=apply, provider=provider)
    except BaseException:
        _lease_release(ticket.pk, run_id)
        raise


def _ticket_read(ticket_id: int, *, lock: bool = False) -> Ticket:
    """The ticket as stored (locked for this transaction's writes with `lock`); its conversation
    and pool are read when used. Twice a run: a statement written once (apps/core/sql.py)."""
    found = rows_where(Ticket, [("id", "=", ticket_id)], lock=lock)
    if not found:
        raise Ticket.DoesNotExist(f"No ticket {ticket_id}.")
    return found[0]


def _ticket_route_leased(
    *, ticket: Ticket, apply: OutcomeApply, provider: RouterProvider | None
) -> RoutingDecision | None:
    text = selectors.ticket_routing_text(ticket=ticket)
    human = ticket.human_requested or human_requested_in(text)
    if human and ticket.pool is not None:
        # The pool is known already; what the earlier routing found in the text still holds.
        outcome = RoutingOutcome(
            "route", ticket.pool, [], _redacted(text), ticket.injection_suspected
        )
    else:
        asked_before = bool(
            rows_where(
                RoutingDecision,
                [("ticket", "=", ticket.pk), ("tier", "=", RoutingDecision.Tier.CLARIFY)],
                columns=["id"],
                limit=1,
            )
        )
        pipeline = pipeline_build(
            provider=provider,
            clarify_allowed=not (asked_before or human),
            use_llm=not human,
            write_cache=not human,
            ticket_id=ticket.pk,
        )
        outcome = pipeline.run(text)
    if human:
        outcome = _handoff(outcome)
    request_id = uuid.uuid4()
    with transaction.atomic():
        locked = _ticket_read(ticket.pk, lock=True)
        locked.routing_lease_owner, locked.routing_lease_until = "", None
        if not _needs_routing(locked):
            row_save(locked, fields=["routing_lease_owner", "routing_lease_until"])
            return None  # routed meanwhile (a person, or a run whose lease had run out)
        decisions = _decisions_save(outcome, ticket=locked, request_id=request_id, dry_run=False)
        locked.injection_suspected = outcome.injection
        locked.missing_fields = outcome.missing_fields if outcome.action == "clarify" else []
        locked.human_requested = human
        row_save(
            locked,
            fields=[
                "injection_suspected",
                "missing_fields",
                "human_requested",
                "routing_lease_owner",
                "routing_lease_until",
                "updated_at",
            ],
        )
        apply(RoutedTicket(ticket=locked, outcome=outcome, decisions=decisions, human=human))
    logger.info(
        "ticket %s routed: %s %s via %s",
        ticket.pk,
        outcome.action,
        outcome.pool.slug if outcome.pool else "-",
        outcome.deciding.tier,
    )
    return decisions[-1]


def _redacted(text: str) -> str:
    """The text as decisions store it (PII redacted), or "" when validation refuses it."""
    try:
        return input_validate(text, max_chars=settings.ROUTER_MAX_INPUT_CHARS).redacted
    except ValidationFailed:
        return ""


def _handoff(outcome: RoutingOutcome) -> RoutingOutcome:
    """A person was asked for: the cheap tiers' pool if they found one, else the review queue.
    The last step of the trail records the handoff itself."""
    for draft in outcome.trail:
        draft.ends_run = False
    if outcome.action in ("route", "clarify") and outcome.pool is not None:
        action, reason = (
            RoutingDecision.Action.ROUTE,
            f"customer asked for a person; {outcome.pool.name} fits",
        )
        outcome = RoutingOutcome(
            "route", outcome.pool, outcome.trail, outcome.redacted, outcome.injection
        )
    else:
        action, reason = (
            RoutingDecision.Action.REVIEW,
            "customer asked for a person; no pool fits yet",
        )
        outcome = RoutingOutcome(
            "review",
            None,
            outcome.trail,
            outcome.redacted,
            outcome.injection,
            review_reason=ReviewReason.HUMAN_REQUESTED,
            candidates=outcome.candidates,
        )
    outcome.trail.append(
        DecisionDraft(
            RoutingDecision.Tier.HANDOFF,
            action,
            pool=outcome.pool,
            reason=reason,
            ends_run=True,
        )
    )
    return outcome


def handoff_message(*, pool_name: str | None) -> str:
    """What the bot says when the customer asked for a person."""
    if pool_name:
        return f"A person from our {pool_name} team will reply here."
    return "A person will look at your request shortly and reply here."


@dataclass(frozen=True)
class DryRun:
    outcome: RoutingOutcome
    decisions: list[RoutingDecision]


def text_route_dry_run(*, text: str, provider: RouterProvider | None = None) -> DryRun:
    """Route a text without a ticket: record the attempts (they cost money), write no cache."""
    pipeline = pipeline_build(provider=provider, write_cache=False)
    outcome = pipeline.run(text)
    decisions = _decisions_save(outcome, ticket=None, request_id=uuid.uuid4(), dry_run=True)
    return DryRun(outcome=outcome, decisions=decisions)


def rule_create(
    *,
    name: str,
    pattern: str,
    pool: Pool,
    kind: str = RoutingRule.Kind.KEYWORD,
    priority: int = 100,
    active: bool = True,
) -> RoutingRule:
    """Create a routing rule; a pattern the rule engine (RE2) cannot run raises ValidationError."""
    rule = RoutingRule(
        name=name, kind=kind, pattern=pattern, pool=pool, priority=priority, active=active
    )
    rule.full_clean()
    rule.save()
    return rule


def tickets_stuck_requeue(*, older_than: timedelta | None = None) -> list[int]:
    """Ids of tickets left in `routing` (a worker died, a task was lost with the broker) for
    ROUTING_STUCK_AFTER_SECONDS or `older_than`, with no run holding them, to route again.

    Each is marked (`updated_at`), so a ticket that only waits in a long queue is queued again
    at most once per that period, not at every sweep.
    """
    if older_than is None:
        older_than = timedelta(seconds=settings.ROUTING_STUCK_AFTER_SECONDS)
    now = timezone.now()
    stuck = Ticket.objects.filter(
        Q(routing_lease_until__isnull=True) | Q(routing_lease_until__lt=now),
        status=Ticket.Status.ROUTING,
        updated_at__lt=now - older_than,
    )
    with transaction.atomic():
        ids = list(stuck.select_for_update(skip_locked=True).values_list("pk", flat=True))
        Ticket.objects.filter(pk__in=ids).update(updated_at=now)
    return ids

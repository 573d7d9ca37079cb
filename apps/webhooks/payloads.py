"""What each event tells an integrator: ids, pool slugs, statuses, tier, reason codes and
timestamps. Never the customer's words, name or email, nor the model's free-text reason (it
may quote the customer): an integrator who needs more fetches it with the staff API."""

from datetime import datetime
from typing import Any

from apps.chat.models import Ticket
from apps.orchestrator.models import RoutingDecision
from apps.pools.models import Pool
from apps.review.models import ReviewItem


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _slug(pool_id: int | None) -> str | None:
    if pool_id is None:
        return None
    return Pool.objects.filter(pk=pool_id).values_list("slug", flat=True).first()


def _ticket_fields(ticket: Ticket) -> dict[str, Any]:
    return {
        "ticket": ticket.pk,
        "conversation": str(ticket.conversation_id),
        "status": ticket.status,
        "pool": _slug(ticket.pool_id),
        "created_at": _iso(ticket.created_at),
    }


def ticket_routed_payload(
    *, ticket: Ticket, previous_pool_id: int | None, actor: Any
) -> dict[str, Any]:
    """`ticket.routed`: the pool a ticket was queued in, by whom, and the deciding tier."""
    deciding_tier = (
        RoutingDecision.objects.real()
        .deciding()
        .filter(ticket_id=ticket.pk)
        .order_by("-created_at", "-id")
        .values_list("tier", flat=True)
        .first()
    )
    return {
        **_ticket_fields(ticket),
        "previous_pool": _slug(previous_pool_id),
        # "router": the orchestrator's own decision; "staff": a reviewer, an agent's "wrong
        # pool" move or a reopen.
        "routed_by": "router" if actor is None else "staff",
        "tier": deciding_tier if actor is None else None,
        "human_requested": ticket.human_requested,
        "queued_at": _iso(ticket.queued_at),
        "sla_due_at": _iso(ticket.sla_due_at),
    }


def ticket_resolved_payload(*, ticket: Ticket) -> dict[str, Any]:
    """`ticket.resolved`: when, and whether its first-response SLA held."""
    return {
        **_ticket_fields(ticket),
        "resolved_at": _iso(ticket.resolved_at),
        "first_response_at": _iso(ticket.first_response_at),
        "sla_due_at": _iso(ticket.sla_due_at),
        "sla_breached": ticket.sla_breached_at is not None,
    }


def review_created_payload(*, item: ReviewItem) -> dict[str, Any]:
    """`review.created`: why the ticket needs a person and which pools came close."""
    return {
        "review_item": item.pk,
        "ticket": item.ticket_id,
        "conversation": str(item.ticket.conversation_id),
        "reason": item.reason,
        "tier": item.tier or None,
        "suggested_pool": _slug(item.suggested_pool_id),
        "candidates": [
            {"pool": str(c.get("pool")), "score": c.get("score")} for c in item.candidates
        ],
        "created_at": _iso(item.created_at),
    }

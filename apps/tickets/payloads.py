"""What ticket webhook events tell an integrator (`ticket.routed`, `ticket.resolved`): ids, pool
slugs, statuses, tier and timestamps. Never the customer's words, name or email, nor the
model's free-text reason (it may quote the customer): an integrator who needs more fetches it
with the staff API. Delivery is apps/webhooks'."""

from datetime import datetime
from typing import Any

from apps.core.users import StaffUser
from apps.tickets.models import Ticket


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def ticket_fields(ticket: Ticket) -> dict[str, Any]:
    """What every event about a ticket says of it."""
    return {
        "ticket": ticket.pk,
        "conversation": str(ticket.conversation_id),
        "status": ticket.status,
        "pool": ticket.pool.slug if ticket.pool is not None else None,
        "created_at": iso(ticket.created_at),
    }


def ticket_routed_payload(
    *, ticket: Ticket, previous_pool: str | None, actor: StaffUser | None, tier: str | None
) -> dict[str, Any]:
    """`ticket.routed`: the pool a ticket was queued in, by whom, and the deciding tier."""
    return {
        **ticket_fields(ticket),
        "previous_pool": previous_pool,
        # "router": the orchestrator's own decision; "staff": a reviewer, an agent's "wrong
        # pool" move or a reopen.
        "routed_by": "router" if actor is None else "staff",
        "tier": tier if actor is None else None,
        "human_requested": ticket.human_requested,
        "queued_at": iso(ticket.queued_at),
        "sla_due_at": iso(ticket.sla_due_at),
    }


def ticket_resolved_payload(*, ticket: Ticket) -> dict[str, Any]:
    """`ticket.resolved`: when, and whether its first-response SLA held."""
    return {
        **ticket_fields(ticket),
        "resolved_at": iso(ticket.resolved_at),
        "first_response_at": iso(ticket.first_response_at),
        "sla_due_at": iso(ticket.sla_due_at),
        "sla_breached": ticket.sla_breached_at is not None,
    }

"""Write-side operations of the desk: internal notes, "wrong pool" (which records the correction
as a routing label) and canned replies with their placeholders. Every action checks the actor's
right to the ticket (`ticket_lock_visible`), not a view."""

import re
from typing import Any

from django.db import transaction

from apps.chat.services import staff_display_name
from apps.core.errors import Conflict, EmptyText, TextTooLong
from apps.desk import selectors
from apps.desk.models import CannedReply, InternalNote
from apps.orchestrator.models import RoutingDecision
from apps.pools.models import Pool
from apps.pools.services import OPEN_FOR_AGENTS, ticket_lock_visible, ticket_queue
from apps.review.models import RoutingLabel
from apps.tickets.models import Ticket, TicketActivity
from apps.tickets.realtime import desk_ticket_item_publish
from apps.tickets.services import ticket_activity_add

Kind = TicketActivity.Kind
DESK_NOTE_MAX_CHARS = 4000
REASON_MAX_CHARS = 500


def _text_clean(text: str, *, limit: int) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise EmptyText("The text is empty.")
    if len(cleaned) > limit:
        raise TextTooLong(f"Limited to {limit:,} characters.", extra={"limit": limit})
    return cleaned


def ticket_note_add(*, ticket: Ticket, actor: Any, text: str) -> InternalNote:
    """Add a note for staff. It goes only to desks viewing the ticket, never to the customer."""
    cleaned = _text_clean(text, limit=DESK_NOTE_MAX_CHARS)
    with transaction.atomic():
        locked = ticket_lock_visible(ticket=ticket, actor=actor)
        note = InternalNote.objects.create(ticket=locked, author=actor, text=cleaned)
        desk_ticket_item_publish(locked.pk, "note", note_payload(note))
    return note


def note_payload(note: InternalNote) -> dict[str, Any]:
    """How a note is shown on the desk."""
    return {
        "id": note.pk,
        "author": note.author.get_username() if note.author else None,
        "text": note.text,
        "created_at": note.created_at.isoformat(),
    }


def ticket_reroute(*, ticket: Ticket, actor: Any, pool: Pool, reason: str) -> Ticket:
    """ "Wrong pool": move the ticket to `pool` and record the correction as a routing label."""
    cleaned = _text_clean(reason, limit=REASON_MAX_CHARS)
    with transaction.atomic():
        locked = ticket_lock_visible(ticket=ticket, actor=actor)
        if not pool.active:
            raise Conflict(f"The {pool.name} pool is not active.")
        if locked.status not in OPEN_FOR_AGENTS:
            raise Conflict("Only a queued or assigned ticket can be moved to another pool.")
        if locked.pool_id == pool.pk:
            raise Conflict(f"The ticket is already in {pool.name}.")
        decisions = RoutingDecision.objects.filter(ticket=locked, dry_run=False).order_by(
            "-created_at", "-id"
        )
        decision = decisions.filter(ends_run=True).first()
        # The redacted text the router saw (a handoff's own decision may not carry it).
        routed_text = decisions.exclude(redacted="").values_list("redacted", flat=True).first()
        RoutingLabel.objects.create(
            ticket=locked,
            decision=decision,
            source=RoutingLabel.Source.REROUTE,
            previous_pool_id=locked.pool_id,
            pool=pool,
            text=(decision.redacted if decision else "") or routed_text or "",
            reason=cleaned,
            author=actor,
        )
        previous_pool = locked.pool
        ticket_activity_add(
            locked,
            Kind.REROUTED,
            actor=actor,
            **{"from": previous_pool.slug if previous_pool else None, "to": pool.slug},
            reason=cleaned,
        )
        ticket_queue(ticket=locked, pool=pool, actor=actor, exclude_user_id=actor.pk)
    locked.refresh_from_db()
    return locked


# --- canned replies -------------------------------------------------------------------------


class _Placeholders(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"  # an unknown placeholder stays visible for the agent to fix


PLACEHOLDERS = ("customer_name", "agent_name", "pool_name", "ticket_id")
AGENT_NAME_FALLBACK = "your support agent"
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def placeholders_fill(*, text: str, ticket: Ticket, agent: Any) -> str:
    """`text` with {customer_name}, {agent_name}, {pool_name} and {ticket_id} filled in.

    Only plain {name} fields are replaced, as text: no attribute access or indexing from
    admin-entered text, and a stray brace is just a brace (str.format would raise on it).
    """
    customer = ticket.conversation.customer
    values = _Placeholders(
        customer_name=customer.name or "there",
        # Customers see first names, never logins.
        agent_name=staff_display_name(agent) or AGENT_NAME_FALLBACK,
        pool_name=ticket.pool.name if ticket.pool else "support",
        ticket_id=str(ticket.pk),
    )
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def canned_reply_render(*, reply: CannedReply, ticket: Ticket, agent: Any) -> str:
    """The reply's text with its placeholders filled for this ticket and agent."""
    return placeholders_fill(text=reply.text, ticket=ticket, agent=agent)


def canned_reply_list_rendered(*, ticket: Ticket, agent: Any) -> list[dict[str, Any]]:
    """The canned replies offered on `ticket` (its pool's and every pool's), each with its text
    filled for this ticket and agent: the REST list and the desk's menu."""
    replies = selectors.canned_reply_list(pool=ticket.pool).select_related("pool")
    return [
        {
            "id": reply.pk,
            "title": reply.title,
            "pool": reply.pool.slug if reply.pool else None,
            "text": canned_reply_render(reply=reply, ticket=ticket, agent=agent),
        }
        for reply in replies
    ]

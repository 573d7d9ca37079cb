"""Write-side operations of tickets: opening one on a customer's first message, messages posted
to a ticket's conversation, status changes, and the activity log.

Every change to a ticket is told to the conversation's participants (a `status` event in its
log, the customer's `seq`) and to the desks that list the ticket (apps/tickets/realtime.py),
after commit. Who may do what to a ticket is checked by the callers (pools, review, routing).
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.chat.models import Attachment, Conversation, ConversationEvent, Message
from apps.chat.services import (
    conversation_events_append,
    conversation_lock,
    message_text_clean,
    message_write,
    staff_display_name,
)
from apps.core.ratelimit import rate_limit_hit
from apps.core.realtime import publish_many_on_commit
from apps.tickets.models import Ticket, TicketActivity
from apps.tickets.realtime import desk_ticket_item_publish, desk_ticket_publications

if TYPE_CHECKING:  # a ticket's pool is named by the foreign key; pools build on tickets
    from apps.pools.models import Pool


@dataclass(frozen=True)
class TicketMessage:
    message: Message
    created: bool  # False when the client_id had been used: nothing new was stored
    ticket: Ticket | None  # the conversation's open ticket, if any
    # A customer's message that opened the ticket or answered a question: routing is due.
    routing_due: bool = False


def status_payload(ticket: Ticket) -> dict[str, Any]:
    """The `status` event: where the request is, never a confidence."""
    pool = ticket.pool
    payload: dict[str, Any] = {
        "status": ticket.status,
        "pool": pool.slug if pool else None,
        "pool_name": pool.name if pool else None,
    }
    if ticket.status == Ticket.Status.ASSIGNED:
        payload["agent"] = staff_display_name(ticket.assignee)
    return payload


def ticket_message_post(
    *,
    conversation: Conversation,
    text: str,
    sender: Message.Sender,
    client_id: uuid.UUID | None = None,
    author: Any = None,
    attachments: Sequence[Attachment] = (),
) -> TicketMessage:
    """Store a message in the conversation's open ticket, opening one on the customer's first
    message, and publish both (apps/flows/messages.py starts routing when it is due).

    A caption is optional next to a file, but when there is one it is checked like any text.
    Idempotent on `client_id`: a resend returns the stored message, publishes nothing and does
    not count against the conversation's rate limit; new customer messages do.
    """
    cleaned = message_text_clean(text) if text.strip() or not attachments else ""
    customer = sender == Message.Sender.CUSTOMER
    with transaction.atomic():
        # Under the conversation's lock, so two racing resends store one message.
        locked = conversation_lock(conversation.pk)
        if client_id is not None:
            existing = Message.objects.filter(conversation=locked, client_id=client_id).first()
            if existing is not None:
                return TicketMessage(message=existing, created=False, ticket=existing.ticket)
        if customer:
            rate_limit_hit(scope="chat_message", key=str(locked.pk), rate=settings.CHAT_RATE_LIMIT)
        ticket = (
            Ticket.objects.filter(conversation=locked)
            .exclude(status=Ticket.Status.RESOLVED)
            .first()
        )
        opened = ticket is None and customer
        if opened:
            wants_human = Conversation.objects.filter(pk=locked.pk, wants_human=True).exists()
            ticket = Ticket.objects.create(
                conversation=locked, status=Ticket.Status.ROUTING, human_requested=wants_human
            )
            if wants_human:
                Conversation.objects.filter(pk=locked.pk).update(wants_human=False)
        ticket_id = ticket.pk if ticket is not None else None
        message, publications = message_write(
            conversation=locked,
            ticket_id=ticket_id,
            text=cleaned,
            sender=sender,
            client_id=client_id,
            author=author,
            attachments=attachments,
        )
        if ticket is not None:
            if opened:
                publications += conversation_events_append(
                    locked,
                    [(ConversationEvent.Type.STATUS, status_payload(ticket))],
                    ticket_id=ticket_id,
                )
            publications += desk_ticket_publications(
                ticket, change="opened" if opened else "message"
            )
        publish_many_on_commit(publications)
    conversation.last_seq = locked.last_seq
    routing_due = (
        ticket is not None
        and customer
        and (opened or ticket.status == Ticket.Status.AWAITING_CUSTOMER)
    )
    return TicketMessage(message=message, created=True, ticket=ticket, routing_due=routing_due)


def ticket_status_set(
    *,
    ticket: Ticket,
    status: Ticket.Status,
    pool: "Pool | None" = None,
    change: str = "status",
    previous_pool_id: int | None = None,
    previous_assignee_id: int | None = None,
) -> Ticket:
    """Move a ticket to `status` (and `pool`), saving the other fields the caller set on it, and
    tell the conversation's participants and the desks that list it."""
    with transaction.atomic():
        locked = conversation_lock(ticket.conversation_id)
        ticket.status = status
        if pool is not None:
            ticket.pool = pool
        ticket.resolved_at = timezone.now() if status == Ticket.Status.RESOLVED else None
        ticket.full_clean(exclude=["conversation", "assignee"])
        ticket.save()
        publications = conversation_events_append(
            locked, [(ConversationEvent.Type.STATUS, status_payload(ticket))], ticket_id=ticket.pk
        )
        publications += desk_ticket_publications(
            ticket,
            change=change,
            previous_pool_id=previous_pool_id,
            previous_assignee_id=previous_assignee_id,
        )
        publish_many_on_commit(publications)
    return ticket


def ticket_activity_add(
    ticket: Ticket, kind: str, *, actor: Any = None, **data: Any
) -> TicketActivity:
    """Record something that happened to a ticket and show it to the desks viewing it."""
    activity = TicketActivity.objects.create(
        ticket=ticket, kind=kind, actor=actor, pool_id=ticket.pool_id, data=data
    )
    desk_ticket_item_publish(
        ticket.pk,
        "activity",
        {
            "id": activity.pk,
            "kind": kind,
            "label": activity.get_kind_display(),
            "actor": actor.get_username() if actor is not None else None,
            "data": data,
            "created_at": activity.created_at.isoformat(),
        },
    )
    return activity

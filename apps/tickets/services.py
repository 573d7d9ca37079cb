"""Write-side operations of tickets: opening one on a customer's first message, messages posted
to a ticket's conversation, status changes, and the activity log.

Every change to a ticket is told to the conversation's participants (a `status` event in its
log, the customer's `seq`) and to the desks that list the ticket (apps/tickets/realtime.py),
after commit. Who may do what to a ticket is checked by the callers (pools, review, routing).
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.chat.models import Attachment, Conversation, ConversationEvent, Message
from apps.chat.services import (
    EventSpec,
    conversation_events_append,
    conversation_lock,
    conversations_lock,
    events_append,
    message_payload,
    message_text_clean,
    messages_store,
    staff_display_name,
)
from apps.core.errors import ApplicationError, RateLimited
from apps.core.ratelimit import rate_limit_hit
from apps.core.realtime import Publication, publish_many_on_commit
from apps.core.sql import row_save, rows_insert, rows_where
from apps.tickets.models import Ticket, TicketActivity
from apps.tickets.realtime import desk_ticket_item_publish, desk_ticket_publications


@dataclass(frozen=True)
class NewMessage:
    """A message to post to a conversation's ticket (`ticket_messages_post`).

    `author` is the staff user behind an agent message; `attachments` are unsaved rows whose
    files are in storage; a resend with the same `client_id` stores nothing new.
    """

    conversation: Conversation
    text: str
    sender: Message.Sender
    client_id: uuid.UUID | None = None
    author: Any = None
    attachments: Sequence[Attachment] = ()


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
    """Store one message in the conversation's open ticket (see `ticket_messages_post`);
    raise what refused it."""
    new = NewMessage(conversation, text, sender, client_id, author, attachments)
    (result,) = ticket_messages_post([new])
    if isinstance(result, ApplicationError):
        raise result
    return result


def ticket_messages_post(posts: Sequence[NewMessage]) -> list[TicketMessage | ApplicationError]:
    """Store messages, in one or many conversations, in one transaction (a group commit), each
    in its conversation's open ticket, opening one on a customer's first message; publish them
    after commit (apps/flows/messages.py starts routing where it is due).

    The statements do not grow with the number of messages: a busy server writes what many
    sockets sent meanwhile in one trip to the database. Each result is the stored message or
    the error that refused that message alone (empty or too long text, the conversation's rate
    limit); the others are stored all the same, in the order given. A caption is optional next
    to a file, but when there is one it is checked like any text. Idempotent on `client_id`: a
    resend returns the stored message, publishes nothing and does not count against the rate
    limit; new customer messages do.
    """
    results: list[TicketMessage | ApplicationError | None] = [None] * len(posts)
    texts: dict[int, str] = {}
    for index, post in enumerate(posts):
        try:
            texts[index] = (
                message_text_clean(post.text) if post.text.strip() or not post.attachments else ""
            )
        except ApplicationError as exc:
            results[index] = exc
    if texts:
        with transaction.atomic():
            conversations = _messages_store(posts, texts, results)
        for post in posts:  # the caller's object learns the seq its conversation reached
            locked = conversations.get(post.conversation.pk)
            if locked is not None:
                post.conversation.last_seq = locked.last_seq
    assert all(result is not None for result in results)
    return cast(list[TicketMessage | ApplicationError], results)


def _messages_store(
    posts: Sequence[NewMessage],
    texts: dict[int, str],
    results: list[TicketMessage | ApplicationError | None],
) -> dict[uuid.UUID, Conversation]:
    """The transaction of `ticket_messages_post`: under the conversations' locks, so that two
    racing resends store one message. Returns the locked conversations."""
    conversations = conversations_lock({posts[index].conversation.pk for index in texts})
    client_ids = [posts[index].client_id for index in texts if posts[index].client_id]
    # Both reads by key, on every message: statements written once (apps/core/sql.py).
    stored: dict[tuple[uuid.UUID, uuid.UUID | None], Message] = {
        (message.conversation_id, message.client_id): message
        for message in rows_where(
            Message,
            [("conversation", "in", list(conversations)), ("client_id", "in", client_ids)],
        )
    }
    open_tickets = {
        ticket.conversation_id: ticket
        for ticket in rows_where(
            Ticket,
            [("conversation", "in", list(conversations)), ("status", "<>", Ticket.Status.RESOLVED)],
        )
    }
    new: list[tuple[int, Message, bool]] = []  # (index, message, opened its ticket)
    for index, text in texts.items():
        post = posts[index]
        conversation = conversations[post.conversation.pk]
        key = (conversation.pk, post.client_id)
        if post.client_id is not None and key in stored:
            existing = stored[key]
            results[index] = TicketMessage(message=existing, created=False, ticket=existing.ticket)
            continue
        customer = post.sender == Message.Sender.CUSTOMER
        if customer:
            try:
                rate_limit_hit(
                    scope="chat_message", key=str(conversation.pk), rate=settings.CHAT_RATE_LIMIT
                )
            except RateLimited as exc:
                results[index] = exc
                continue
        ticket = open_tickets.get(conversation.pk)
        opened = ticket is None and customer
        if opened:
            (ticket,) = rows_insert(
                [
                    Ticket(
                        conversation=conversation,
                        status=Ticket.Status.ROUTING,
                        human_requested=conversation.wants_human,
                    )
                ]
            )
            open_tickets[conversation.pk] = ticket
            if conversation.wants_human:
                conversation.wants_human = False
                Conversation.objects.filter(pk=conversation.pk).update(wants_human=False)
        message = Message(
            conversation=conversation,
            ticket=ticket,
            sender=post.sender,
            text=text,
            client_id=post.client_id,
            author=post.author,
        )
        if post.client_id is not None:
            stored[key] = message  # a resend later in this batch
        new.append((index, message, opened))
        routing_due = (
            ticket is not None
            and customer
            and (opened or ticket.status == Ticket.Status.AWAITING_CUSTOMER)
        )
        results[index] = TicketMessage(
            message=message, created=True, ticket=ticket, routing_due=routing_due
        )
    if not new:
        return conversations
    messages_store([(message, posts[index].attachments) for index, message, _opened in new])
    appends: list[tuple[Conversation, list[EventSpec], int | None]] = []
    desk: list[Publication] = []
    for index, message, opened in new:
        ticket = message.ticket
        specs: list[EventSpec] = [
            (ConversationEvent.Type.MESSAGE, message_payload(message, posts[index].attachments))
        ]
        if opened:
            assert ticket is not None
            specs.append((ConversationEvent.Type.STATUS, status_payload(ticket)))
        appends.append((message.conversation, specs, ticket.pk if ticket else None))
        if ticket is not None:
            desk += desk_ticket_publications(ticket, change="opened" if opened else "message")
    publish_many_on_commit(events_append(appends) + desk)
    return conversations


def ticket_status_set(
    *,
    ticket: Ticket,
    status: Ticket.Status,
    change: str = "status",
    previous_pool_id: int | None = None,
    previous_assignee_id: int | None = None,
) -> Ticket:
    """Move a ticket to `status`, saving the other fields the caller set on it (its pool, say), and
    tell the conversation's participants and the desks that list it."""
    # No savepoint when the caller's transaction is open (a routing run's, a queue's): nothing
    # recovers from half a status change, and each savepoint is two statements under the lock.
    with transaction.atomic(savepoint=False):
        locked = conversation_lock(ticket.conversation_id)
        ticket.status = status
        ticket.resolved_at = timezone.now() if status == Ticket.Status.RESOLVED else None
        # Field checks only: each constraint check and foreign-key check is a query of its own
        # (a fifth of a routing run); the database holds the same constraints on save.
        ticket.full_clean(exclude=["conversation", "assignee", "pool"], validate_constraints=False)
        row_save(ticket)  # every field, as save() writes them, in a statement written once
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
    (activity,) = rows_insert(
        [TicketActivity(ticket=ticket, kind=kind, actor=actor, pool_id=ticket.pool_id, data=data)]
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

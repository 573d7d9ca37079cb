"""Write-side operations of the customer chat. Socket and REST edges both call these."""

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.chat.models import (
    Attachment,
    Conversation,
    ConversationEvent,
    Customer,
    Message,
    Ticket,
)
from apps.chat.selectors import token_hash
from apps.core.errors import EmptyText, InvalidText, TextTooLong
from apps.core.ratelimit import rate_limit_hit
from apps.core.realtime import Publication, group_send, publish_many_on_commit
from apps.orchestrator.validation import refused_characters
from apps.pools.models import Pool
from apps.pools.realtime import desk_ticket_publications


def conversation_group(conversation_id: uuid.UUID) -> str:
    """The channel-layer group every socket of one conversation joins."""
    return f"conversation.{conversation_id.hex}"


@dataclass(frozen=True)
class ConversationCreated:
    conversation: Conversation
    token: str  # shown once; only its hash is stored


@dataclass(frozen=True)
class MessagePosted:
    message: Message
    created: bool  # False when the client_id had been used: nothing new was stored


def conversation_create(*, name: str = "", email: str = "") -> ConversationCreated:
    """Open a conversation for a new (possibly anonymous) customer and issue its token."""
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        # Emails are matched exactly (on an index) to find a customer's earlier tickets.
        customer = Customer.objects.create(name=name.strip(), email=email.strip().lower())
        conversation = Conversation.objects.create(customer=customer, token_hash=token_hash(token))
    return ConversationCreated(conversation=conversation, token=token)


def message_text_clean(text: str) -> str:
    """Trim a message and refuse it when empty, too long, or carrying control or bidi characters
    (what an agent reads must be what the router reads)."""
    cleaned = text.strip()
    if not cleaned:
        raise EmptyText()
    limit = settings.CHAT_MAX_MESSAGE_CHARS
    if len(cleaned) > limit:
        raise TextTooLong(f"Messages are limited to {limit:,} characters.", extra={"limit": limit})
    refused = refused_characters(cleaned)
    if refused:
        raise InvalidText(
            "The message contains hidden control or text-direction characters "
            f"({', '.join(refused[:3])}). Please retype it as plain text.",
            extra={"characters": refused[:10]},
        )
    return cleaned


def _conversation_lock(conversation_id: uuid.UUID) -> Conversation:
    # Row lock on PostgreSQL; SQLite runs IMMEDIATE transactions, which serialise writers.
    # Every row lock in the project is NO KEY UPDATE: it still serialises writers of the row but
    # does not block the KEY SHARE lock a foreign-key insert takes (a message referencing a
    # ticket another transaction has locked), which is how a lock-order deadlock arises.
    return (
        Conversation.objects.select_for_update(no_key=True)
        .only("id", "last_seq")
        .get(pk=conversation_id)
    )


EventSpec = tuple[ConversationEvent.Type, dict[str, Any]]


def _events_append(
    conversation: Conversation, specs: list[EventSpec], *, ticket_id: int | None
) -> list[Publication]:
    """Append events to a conversation locked by the caller; return what to publish about
    them after commit (the caller adds its own and publishes all in one trip).

    The publications name the ticket the events belong to (not the customer's frame): a desk
    following the conversation relays only events of tickets its user may see.
    """
    events = [
        ConversationEvent(
            conversation=conversation, seq=conversation.last_seq + n, type=kind, payload=payload
        )
        for n, (kind, payload) in enumerate(specs, start=1)
    ]
    ConversationEvent.objects.bulk_create(events)
    conversation.last_seq += len(events)
    Conversation.objects.filter(pk=conversation.pk).update(
        last_seq=conversation.last_seq, updated_at=timezone.now()
    )
    group = conversation_group(conversation.pk)
    return [
        (
            group,
            {
                "type": "conversation.event",
                "conversation": conversation.pk.hex,
                "ticket": ticket_id,
                "frame": event.frame(),
            },
        )
        for event in events
    ]


def staff_display_name(user: Any) -> str | None:
    """What customers see of a staff user: their first name, never the login."""
    if user is None:
        return None
    return (user.first_name or "").strip() or None


def attachment_payload(attachment: Attachment) -> dict[str, Any]:
    """What a conversation's participants see of an attachment; `url` serves it to them only."""
    return {
        "id": attachment.pk,
        "name": attachment.name,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "url": f"/api/v1/attachments/{attachment.pk}/",
    }


def _message_payload(message: Message, attachments: Sequence[Attachment] = ()) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": message.pk,
        "client_id": str(message.client_id) if message.client_id else None,
        "sender": message.sender,
        "text": message.text,
        "created_at": message.created_at.isoformat(),
    }
    if message.sender == Message.Sender.AGENT:
        payload["author"] = staff_display_name(message.author)
    # Only messages that carry files say so: plain messages keep their original shape.
    if attachments:
        payload["attachments"] = [attachment_payload(attachment) for attachment in attachments]
    return payload


def _status_payload(ticket: Ticket) -> dict[str, Any]:
    pool: Pool | None = ticket.pool
    payload: dict[str, Any] = {
        "status": ticket.status,
        "pool": pool.slug if pool else None,
        "pool_name": pool.name if pool else None,
    }
    if ticket.status == Ticket.Status.ASSIGNED:
        payload["agent"] = staff_display_name(ticket.assignee)
    return payload


def message_post(
    *,
    conversation: Conversation,
    text: str,
    sender: Message.Sender,
    client_id: uuid.UUID | None = None,
    author: Any = None,
    attachments: Sequence[Attachment] = (),
) -> MessagePosted:
    """Store a message, open a ticket on the customer's first message, and publish both.

    `author` is the staff user behind an agent message. `attachments` are unsaved Attachment
    rows whose files are already in storage (apps/chat/attachments.py); they are saved with the
    message, in its transaction, and a message that carries one may have no text.

    Idempotent on `client_id`: a resend returns the stored message, publishes nothing and does
    not count against the conversation's rate limit; new customer messages do.
    """
    # A caption is optional next to a file, but when there is one it is checked like any text.
    cleaned = message_text_clean(text) if text.strip() or not attachments else ""
    with transaction.atomic():
        # Under the conversation's lock, so two racing resends store one message.
        locked = _conversation_lock(conversation.pk)
        if client_id is not None:
            existing = Message.objects.filter(conversation=locked, client_id=client_id).first()
            if existing is not None:
                return MessagePosted(message=existing, created=False)
        if sender == Message.Sender.CUSTOMER:
            rate_limit_hit(scope="chat_message", key=str(locked.pk), rate=settings.CHAT_RATE_LIMIT)
        ticket = (
            Ticket.objects.filter(conversation=locked)
            .exclude(status=Ticket.Status.RESOLVED)
            .first()
        )
        opened = ticket is None and sender == Message.Sender.CUSTOMER
        if opened:
            wants_human = Conversation.objects.filter(pk=locked.pk, wants_human=True).exists()
            ticket = Ticket.objects.create(
                conversation=locked, status=Ticket.Status.ROUTING, human_requested=wants_human
            )
            if wants_human:
                Conversation.objects.filter(pk=locked.pk).update(wants_human=False)
        message = Message.objects.create(
            conversation=locked,
            ticket=ticket,
            sender=sender,
            text=cleaned,
            client_id=client_id,
            author=author,
        )
        for attachment in attachments:
            attachment.conversation = locked
            attachment.message = message
            attachment.save()
        events: list[EventSpec] = [
            (ConversationEvent.Type.MESSAGE, _message_payload(message, attachments))
        ]
        if opened:
            assert ticket is not None
            events.append((ConversationEvent.Type.STATUS, _status_payload(ticket)))
        publications = _events_append(
            locked, events, ticket_id=ticket.pk if ticket is not None else None
        )
        if ticket is not None:
            change = "opened" if opened else "message"
            publications += desk_ticket_publications(ticket, change=change)
        publish_many_on_commit(publications)
        if (
            ticket is not None
            and sender == Message.Sender.CUSTOMER
            and (opened or ticket.status == Ticket.Status.AWAITING_CUSTOMER)
        ):
            ticket_id = ticket.pk
            transaction.on_commit(lambda: _ticket_route_enqueue(ticket_id))
    conversation.last_seq = locked.last_seq
    return MessagePosted(message=message, created=True)


def _ticket_route_enqueue(ticket_id: int) -> None:
    # Imported here: the orchestrator builds on chat, so chat may not import it at load time.
    from apps.orchestrator.tasks import ticket_route_enqueue

    ticket_route_enqueue(ticket_id)


def ticket_status_set(
    *,
    ticket: Ticket,
    status: Ticket.Status,
    pool: Pool | None = None,
    change: str = "status",
    previous_pool_id: int | None = None,
    previous_assignee_id: int | None = None,
) -> Ticket:
    """Move a ticket to `status` (and `pool`), saving the other fields the caller set on it, and
    tell the conversation's participants and the desks that list it."""
    with transaction.atomic():
        locked = _conversation_lock(ticket.conversation_id)
        ticket.status = status
        if pool is not None:
            ticket.pool = pool
        ticket.resolved_at = timezone.now() if status == Ticket.Status.RESOLVED else None
        ticket.full_clean(exclude=["conversation", "assignee"])
        ticket.save()
        publications = _events_append(
            locked, [(ConversationEvent.Type.STATUS, _status_payload(ticket))], ticket_id=ticket.pk
        )
        publications += desk_ticket_publications(
            ticket,
            change=change,
            previous_pool_id=previous_pool_id,
            previous_assignee_id=previous_assignee_id,
        )
        publish_many_on_commit(publications)
    return ticket


def conversation_wants_human_set(*, conversation: Conversation) -> None:
    """Remember that the customer asked for a person before writing: their first message
    skips the model tiers."""
    Conversation.objects.filter(pk=conversation.pk).update(wants_human=True)


def conversation_typing_publish(
    *, conversation_id: uuid.UUID, sender: Message.Sender, origin: str
) -> None:
    """Tell the other participants that `sender` is typing (ephemeral, not stored)."""
    rate_limit_hit(
        scope="chat_typing", key=str(conversation_id), rate=settings.CHAT_TYPING_RATE_LIMIT
    )
    group_send(
        conversation_group(conversation_id),
        {
            "type": "conversation.typing",
            "conversation": conversation_id.hex,
            "sender": sender,
            "origin": origin,
        },
    )


def conversation_handoff(*, conversation: Conversation) -> Ticket | None:
    """Ask for a person on the customer's behalf (the socket's `handoff` frame and the REST
    endpoint). Counts against the conversation's chat rate limit: before the first message
    each request posts a bot reply."""
    # Imported here: the orchestrator builds on chat, so chat may not import it at load time.
    from apps.orchestrator.services import ticket_human_request

    rate_limit_hit(scope="chat_message", key=str(conversation.pk), rate=settings.CHAT_RATE_LIMIT)
    return ticket_human_request(conversation=conversation)

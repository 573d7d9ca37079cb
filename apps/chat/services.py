"""Write-side operations of conversations: customers, messages, attachments' messages, typing and
the per-conversation event log. Tickets build on these (apps/tickets/services.py); a customer's
message, which opens or wakes a ticket and starts routing, is a flow (apps/flows/messages.py)."""

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.chat.models import Attachment, Conversation, ConversationEvent, Customer, Message
from apps.chat.selectors import token_hash
from apps.core.errors import EmptyText, InvalidText, TextTooLong
from apps.core.ratelimit import rate_limit_hit
from apps.core.realtime import Publication, group_send
from apps.core.text import refused_characters


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


def conversation_lock(conversation_id: uuid.UUID) -> Conversation:
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


def conversation_events_append(
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


def message_payload(message: Message, attachments: Sequence[Attachment] = ()) -> dict[str, Any]:
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


def message_write(
    *,
    conversation: Conversation,
    ticket_id: int | None,
    text: str,
    sender: Message.Sender,
    client_id: uuid.UUID | None = None,
    author: Any = None,
    attachments: Sequence[Attachment] = (),
) -> tuple[Message, list[Publication]]:
    """Store a message (with its attachments) and its `message` event in a conversation the
    caller has locked (`conversation_lock`); return it and what to publish after commit.

    `text` is already clean (`message_text_clean`); `author` is the staff user behind an agent
    message; `attachments` are unsaved rows whose files are in storage (apps/chat/attachments.py).
    """
    message = Message.objects.create(
        conversation=conversation,
        ticket_id=ticket_id,
        sender=sender,
        text=text,
        client_id=client_id,
        author=author,
    )
    for attachment in attachments:
        attachment.conversation = conversation
        attachment.message = message
        attachment.save()
    publications = conversation_events_append(
        conversation,
        [(ConversationEvent.Type.MESSAGE, message_payload(message, attachments))],
        ticket_id=ticket_id,
    )
    return message, publications


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

"""Write-side operations of conversations: customers, messages, attachments' messages, typing and
the per-conversation event log. Tickets build on these (apps/tickets/services.py); a customer's
message, which opens or wakes a ticket and starts routing, is a flow (apps/flows/messages.py)."""

import secrets
import uuid
from collections.abc import Collection, Sequence
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
from apps.core.sql import rows_insert, rows_update, rows_where
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
    """Lock one conversation for its writer (see `conversations_lock`)."""
    return conversations_lock([conversation_id])[conversation_id]


def conversations_lock(conversation_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Conversation]:
    """Lock conversations for their writer, in the order of their ids (two writers that lock
    several never wait for each other in a circle).

    Row locks on PostgreSQL; SQLite runs IMMEDIATE transactions, which serialise writers. Every
    row lock in the project is NO KEY UPDATE: it still serialises writers of the row but does
    not block the KEY SHARE lock a foreign-key insert takes (a message referencing a ticket
    another transaction has locked), which is how a lock-order deadlock arises.
    """
    locked = rows_where(
        Conversation,
        [("id", "in", sorted(set(conversation_ids)))],
        columns=("last_seq", "wants_human"),
        order_by="id",
        lock=True,
    )
    conversations = {conversation.pk: conversation for conversation in locked}
    missing = set(conversation_ids) - conversations.keys()
    if missing:
        raise Conversation.DoesNotExist(f"No conversation {sorted(missing)[0]}.")
    return conversations


EventSpec = tuple[ConversationEvent.Type, dict[str, Any]]


def events_append(
    appends: Sequence[tuple[Conversation, Sequence[EventSpec], int | None]],
) -> list[Publication]:
    """Append events to conversations locked by the caller, in the order given, with two
    statements whatever their number; return what to publish about them after commit (the
    caller adds its own and publishes all in one trip).

    Each append is (conversation, events, the ticket they belong to). The publications name the
    ticket (not the customer's frame): a desk following the conversation relays only events of
    tickets its user may see.
    """
    events: list[tuple[ConversationEvent, int | None]] = []
    touched: dict[uuid.UUID, Conversation] = {}
    for conversation, specs, ticket_id in appends:
        for kind, payload in specs:
            conversation.last_seq += 1
            event = ConversationEvent(
                conversation=conversation, seq=conversation.last_seq, type=kind, payload=payload
            )
            events.append((event, ticket_id))
        touched[conversation.pk] = conversation
    if not events:
        return []
    rows_insert([event for event, _ticket_id in events])
    _conversations_seq_save(touched.values())
    return [
        (
            conversation_group(event.conversation_id),
            {
                "type": "conversation.event",
                "conversation": event.conversation_id.hex,
                "ticket": ticket_id,
                "frame": event.frame(),
            },
        )
        for event, ticket_id in events
    ]


def _conversations_seq_save(conversations: Collection[Conversation]) -> None:
    """Save the conversations' `last_seq` (and `updated_at`) in one trip (`rows_update`: not
    `bulk_update`, whose CASE was half of the sockets' database thread under a chat burst)."""
    now = timezone.now()
    rows_update(
        Conversation,
        [(conversation.pk, conversation.last_seq) for conversation in conversations],
        fields=("last_seq",),
        common={"updated_at": now},
    )
    for conversation in conversations:
        conversation.updated_at = now


def conversation_events_append(
    conversation: Conversation, specs: list[EventSpec], *, ticket_id: int | None
) -> list[Publication]:
    """Append events to one conversation locked by the caller (see `events_append`)."""
    return events_append([(conversation, specs, ticket_id)])


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


def messages_store(messages: Sequence[tuple[Message, Sequence[Attachment]]]) -> None:
    """Insert unsaved messages, each with its attachments, in conversations the caller has
    locked (`conversations_lock`): one statement for the messages, whatever their number.

    Texts are already clean (`message_text_clean`); attachments are unsaved rows whose files
    are in storage (apps/chat/attachments.py). The caller appends their `message` events.
    """
    rows_insert([message for message, _attachments in messages])
    for message, attachments in messages:
        for attachment in attachments:
            attachment.conversation_id = message.conversation_id
            attachment.message = message
            attachment.save()


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

"""Read-side queries for conversations, messages and events."""

import hashlib
import hmac
import uuid
from dataclasses import dataclass

from apps.chat.models import Conversation, ConversationEvent, Message
from apps.core.sql import Condition, rows_where


def token_hash(token: str) -> str:
    """The stored form of a conversation token (tokens are random, so plain SHA-256 suffices)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def conversation_get_by_token(*, token: str) -> Conversation | None:
    """The conversation this bearer token opens, or None."""
    if not token or len(token) > 200:
        return None
    digest = token_hash(token)
    # Every socket's hello asks: a statement written once (apps/core/sql.py).
    found = rows_where(Conversation, [("token_hash", "=", digest)], limit=1)
    conversation = found[0] if found else None
    # The lookup is by an indexed hash; compare again in constant time for good measure.
    if conversation is None or not hmac.compare_digest(conversation.token_hash, digest):
        return None
    return conversation


def conversation_authenticate(
    *, conversation_id: uuid.UUID | str, token: str
) -> Conversation | None:
    """The conversation when `token` belongs to `conversation_id`, else None."""
    conversation = conversation_get_by_token(token=token)
    if conversation is None or str(conversation.id) != str(conversation_id):
        return None
    return conversation


@dataclass(frozen=True)
class MessagePage:
    messages: list[Message]  # oldest first
    has_more: bool  # older messages exist before the first of these


def message_page(*, conversation: Conversation, before: int | None, limit: int) -> MessagePage:
    """The latest `limit` messages of a conversation, or the latest before message id
    `before`; oldest first, with their attachments. Messages of one conversation are written
    one at a time (under its row lock), so their ids follow their order."""
    messages = Message.objects.filter(conversation=conversation)
    if before is not None:
        messages = messages.filter(id__lt=before)
    newest = list(messages.order_by("-id").prefetch_related("attachments")[: limit + 1])
    return MessagePage(messages=newest[:limit][::-1], has_more=len(newest) > limit)


def event_list_after(
    *, conversation_id: uuid.UUID, after: int, until: int | None = None, limit: int | None = None
) -> list[ConversationEvent]:
    """Events with `after < seq (<= until)`, in seq order. Every socket reads them at hello
    and when quiet (its resync), so the statement is written once (apps/core/sql.py)."""
    where: list[Condition] = [("conversation", "=", conversation_id), ("seq", ">", after)]
    if until is not None:
        where.append(("seq", "<=", until))
    return rows_where(ConversationEvent, where, order_by="seq", limit=limit)


def conversation_last_seq(*, conversation_id: uuid.UUID) -> int:
    """The conversation's latest event seq (0 before any, or for no such conversation)."""
    found = rows_where(Conversation, [("id", "=", conversation_id)], columns=["last_seq"])
    return found[0].last_seq if found else 0

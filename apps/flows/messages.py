"""Messages into a conversation: the customer's (text or file) opens or wakes a ticket and
starts routing; an agent's file is a reply; asking for a person hands the ticket over."""

import uuid
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.files import File
from django.db import transaction

from apps.chat.attachments import attachment_store, caption_clean, file_removed_on_error
from apps.chat.models import Attachment, Conversation, Message
from apps.chat.services import MessagePosted as MessagePosted  # re-exported for the edges
from apps.core.errors import ApplicationError, Conflict, NotFound
from apps.core.ratelimit import rate_limit_hit
from apps.flows.routing import ticket_human_request
from apps.flows.tasks import ticket_route_enqueue
from apps.pools.selectors import ticket_can_access
from apps.pools.services import ticket_reply
from apps.tickets.models import Ticket
from apps.tickets.services import NewMessage as NewMessage  # re-exported for the edges
from apps.tickets.services import ticket_messages_post


def message_post(
    *,
    conversation: Conversation,
    text: str,
    sender: Message.Sender,
    client_id: uuid.UUID | None = None,
    author: Any = None,
    attachments: list[Attachment] | None = None,
) -> MessagePosted:
    """Store a message in the conversation's ticket (see `messages_post`); raise what refused
    it."""
    new = NewMessage(conversation, text, sender, client_id, author, attachments or ())
    (result,) = messages_post([new])
    if isinstance(result, ApplicationError):
        raise result
    return result


def messages_post(posts: Sequence[NewMessage]) -> list[MessagePosted | ApplicationError]:
    """Store messages, from one socket or many, in one transaction (each in its conversation's
    ticket, opening one on the customer's first message) and, once committed, route each
    ticket whose customer opened it or answered the question it waited on.

    Each result is the stored message or the error that refused that message alone.
    """
    results: list[MessagePosted | ApplicationError] = []
    due: list[int] = []
    for posted in ticket_messages_post(posts):
        if isinstance(posted, ApplicationError):
            results.append(posted)
            continue
        if posted.routing_due:
            assert posted.ticket is not None
            due.append(posted.ticket.pk)
        results.append(MessagePosted(message=posted.message, created=posted.created))
    if due:
        transaction.on_commit(lambda: _routes_enqueue(due))
    return results


def _routes_enqueue(ticket_ids: list[int]) -> None:
    for ticket_id in ticket_ids:
        ticket_route_enqueue(ticket_id)


def attachment_post(
    *,
    conversation: Conversation,
    upload: File[Any],
    sender: Message.Sender,
    author: Any = None,
    text: str = "",
    client_id: uuid.UUID | None = None,
) -> MessagePosted:
    """Send a file (image or PDF), with an optional caption, as one message.

    The message and its attachment are stored in one transaction and published as one
    `message` event carrying `attachments`. A customer's upload counts against the chat rate
    limit and opens a ticket like a text message; idempotent on `client_id` like messages.
    """
    if client_id is not None:
        existing = Message.objects.filter(conversation=conversation, client_id=client_id).first()
        if existing is not None:
            return MessagePosted(message=existing, created=False)
    caption = caption_clean(text)
    attachment = attachment_store(
        conversation=conversation, upload=upload, sender=sender, uploaded_by=author
    )
    with file_removed_on_error(attachment):
        posted = message_post(
            conversation=conversation,
            text=caption,
            sender=sender,
            client_id=client_id,
            author=author,
            attachments=[attachment],
        )
    if not posted.created:  # a resend that raced the first upload: keep the first file only
        attachment.file.delete(save=False)
    return posted


def ticket_attachment_post(
    *, ticket: Ticket, actor: Any, upload: File[Any], text: str = ""
) -> Message:
    """An agent sends a file to the customer, live in their widget. It is a reply: it claims a
    queued ticket of the agent's pool and counts as the first response."""
    # Checked before the file is stored (and again under the ticket's lock by the reply).
    if not ticket_can_access(user=actor, ticket=ticket):
        raise NotFound("No such ticket.")
    if ticket.status == Ticket.Status.RESOLVED:
        raise Conflict("The ticket is resolved; reopen it to send a file.")
    caption = caption_clean(text)
    attachment = attachment_store(
        conversation=ticket.conversation,
        upload=upload,
        sender=Message.Sender.AGENT,
        uploaded_by=actor,
    )
    with file_removed_on_error(attachment):
        return ticket_reply(ticket=ticket, actor=actor, text=caption, attachments=[attachment])


def conversation_handoff(*, conversation: Conversation) -> Ticket | None:
    """Ask for a person on the customer's behalf (the socket's `handoff` frame and the REST
    endpoint). Counts against the conversation's chat rate limit: before the first message
    each request posts a bot reply."""
    rate_limit_hit(scope="chat_message", key=str(conversation.pk), rate=settings.CHAT_RATE_LIMIT)
    return ticket_human_request(conversation=conversation)

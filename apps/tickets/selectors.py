"""Read-side queries for tickets."""

from apps.chat.models import Conversation
from apps.tickets.models import Ticket


def conversation_current_ticket(*, conversation: Conversation) -> Ticket | None:
    """The open ticket, or else the most recent one, or None before the first message."""
    tickets = Ticket.objects.filter(conversation=conversation).select_related("pool")
    open_ticket = tickets.exclude(status=Ticket.Status.RESOLVED).first()
    return open_ticket or tickets.order_by("-created_at", "-id").first()

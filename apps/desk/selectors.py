"""Read-side queries of the desk: canned replies, notes, drafts and a ticket's activity. Who may
see a ticket is decided in apps/pools/selectors.py."""

from django.db.models import Q, QuerySet

from apps.desk.models import CannedReply, DraftReply, InternalNote
from apps.pools.models import Pool
from apps.tickets.models import Ticket, TicketActivity


def canned_reply_list(*, pool: Pool | None) -> QuerySet[CannedReply]:
    """Active canned replies for a pool: its own and those offered in every pool."""
    replies = CannedReply.objects.filter(active=True)
    if pool is None:
        return replies.filter(pool__isnull=True)
    return replies.filter(Q(pool=pool) | Q(pool__isnull=True))


def note_list(*, ticket: Ticket) -> QuerySet[InternalNote]:
    """The ticket's internal notes, oldest first (staff only)."""
    return InternalNote.objects.filter(ticket=ticket).select_related("author")


def activity_list(*, ticket: Ticket) -> QuerySet[TicketActivity]:
    """What happened to the ticket on the desk, oldest first."""
    return TicketActivity.objects.filter(ticket=ticket).select_related("actor")


def draft_list(*, ticket: Ticket) -> QuerySet[DraftReply]:
    """AI drafts for the ticket, newest first."""
    return DraftReply.objects.filter(ticket=ticket).order_by("-created_at", "-id")

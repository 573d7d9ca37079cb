"""Desk work in the background: gather context for tickets arriving in a queue, write AI drafts,
fail drafts left pending."""

from celery import shared_task
from django.db import DatabaseError

from apps.core.background import BackgroundLane
from apps.desk.assist import drafts_stale_fail, ticket_context_gather, ticket_draft_write
from apps.tickets.models import Ticket

# The tasks are named by their module, apps.desk.tasks (they were apps.pools.tasks): a message
# queued under an old name just before a deploy is dropped by the new workers. Neither task is a
# step of a ticket's life, and each has its recovery below, so the old names are not kept.
# Context is a help, not a step of the ticket's life: the desk shows the ticket without it, and
# a burst of new tickets is routed before their context is gathered (low priority).
_lane = BackgroundLane(
    "context-gather", recovery="the desk shows the ticket without context", priority="low"
)
# A draft not written stays `pending` until the stale-draft sweep fails it; the agent asks again.
_drafts = BackgroundLane("drafts", recovery="the stale-draft sweep fails it")


@shared_task(
    bind=True,
    acks_late=True,
    max_retries=3,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    retry_jitter=True,
)
def ticket_context_gather_task(self: object, ticket_id: int) -> None:
    """Gather the agent's context for one routed ticket."""
    ticket = Ticket.objects.filter(pk=ticket_id).first()
    if ticket is None:
        return
    ticket_context_gather(ticket=ticket)


def ticket_context_gather_enqueue(ticket_id: int) -> None:
    """Queue context gathering for a ticket that arrived in a queue (pools calls it after
    commit: the desk registers it with `ticket_queued_listen`, apps/desk/apps.py)."""
    _lane.submit(ticket_context_gather_task, ticket_id)


@shared_task(acks_late=True)
def ticket_draft_write_task(draft_id: int) -> None:
    """Write one pending AI draft (a model call, outside any request)."""
    ticket_draft_write(draft_id=draft_id)


def ticket_draft_write_enqueue(draft_id: int) -> None:
    """Queue the writing of a pending draft (the draft API calls it once the draft is stored)."""
    _drafts.submit(ticket_draft_write_task, draft_id)


@shared_task
def drafts_stale_fail_task() -> None:
    """Fail drafts left pending (their worker died), so the agent may ask again."""
    drafts_stale_fail()

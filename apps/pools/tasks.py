"""Desk work in the background: return tickets of offline agents, raise SLA breaches, and gather
context for routed tickets."""

from celery import shared_task
from django.db import DatabaseError

from apps.chat.models import Ticket
from apps.core.background import BackgroundLane
from apps.pools.assist import ticket_context_gather
from apps.pools.services import agents_offline_release, tickets_sla_check

# Context is a help, not a step of the ticket's life: the desk shows the ticket without it.
_lane = BackgroundLane("context-gather", recovery="the desk shows the ticket without context")


@shared_task
def agents_offline_release_task() -> None:
    """Return the tickets of agents offline past the grace period to their queues."""
    agents_offline_release()


@shared_task
def tickets_sla_check_task() -> None:
    """Mark tickets whose first reply is overdue as breached."""
    tickets_sla_check()


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
    """Queue context gathering for a routed ticket (called after commit by routing)."""
    _lane.submit(ticket_context_gather_task, ticket_id)

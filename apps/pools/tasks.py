"""Desk work in the background: return tickets of offline agents, raise SLA breaches, and gather
context for routed tickets."""

import logging
from concurrent.futures import ThreadPoolExecutor

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, close_old_connections

from apps.chat.models import Ticket
from apps.pools.assist import ticket_context_gather
from apps.pools.services import agents_offline_release, tickets_sla_check

logger = logging.getLogger(__name__)

# Embedded profile (no broker): gathering runs beside the server, like routing does.
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="context-gather")


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


def _gather_in_thread(ticket_id: int) -> None:
    try:
        ticket_context_gather_task.apply(args=(ticket_id,), throw=True)
    except Exception:
        # Context is a help, not a step of the ticket's life: the desk shows the ticket without it.
        logger.exception("gathering context for ticket %s failed", ticket_id)
    finally:
        close_old_connections()


def ticket_context_gather_enqueue(ticket_id: int) -> None:
    """Queue context gathering for a routed ticket (called after commit by routing)."""
    if settings.ROUTER_IN_THREAD:
        _executor.submit(_gather_in_thread, ticket_id)
    else:
        ticket_context_gather_task.delay(ticket_id)

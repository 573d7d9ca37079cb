"""Background routing: a Celery task per ticket, or a thread in the embedded profile."""

import logging
from concurrent.futures import ThreadPoolExecutor

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, close_old_connections

from apps.chat.models import Ticket
from apps.orchestrator.services import ticket_route, tickets_stuck_requeue

logger = logging.getLogger(__name__)

# Embedded profile: no broker, so routing runs beside the server; one worker keeps SQLite calm.
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="router")


@shared_task(
    bind=True,
    acks_late=True,
    max_retries=5,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    retry_jitter=True,
)
def ticket_route_task(self: object, ticket_id: int) -> None:
    """Route one ticket through the orchestrator."""
    ticket = Ticket.objects.filter(pk=ticket_id).first()
    if ticket is None:
        return
    ticket_route(ticket=ticket)


@shared_task
def tickets_stuck_requeue_task() -> None:
    """Route again tickets that stayed in `routing` (a worker or process died mid-way)."""
    for ticket_id in tickets_stuck_requeue():
        ticket_route_enqueue(ticket_id)


def _route_in_thread(ticket_id: int) -> None:
    try:
        ticket_route_task.apply(args=(ticket_id,), throw=True)
    except Exception:
        logger.exception("routing ticket %s failed; the stuck-ticket sweep will retry", ticket_id)
    finally:
        close_old_connections()


def ticket_route_enqueue(ticket_id: int) -> None:
    """Queue routing for a ticket (called after commit by the chat services)."""
    if settings.ROUTER_IN_THREAD:
        _executor.submit(_route_in_thread, ticket_id)
    else:
        ticket_route_task.delay(ticket_id)

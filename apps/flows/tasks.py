"""Background routing: a Celery task per ticket, or a thread in the embedded profile.

The tasks keep the names they had before they moved here from apps/orchestrator/tasks.py: a
task queued under the old name still runs after a rolling restart.
"""

import logging
from typing import Any

from celery import Task, shared_task
from django.db import DatabaseError

from apps.core.background import BackgroundLane
from apps.flows.routing import ticket_route
from apps.orchestrator.services import tickets_stuck_requeue
from apps.tickets.models import Ticket

logger = logging.getLogger(__name__)

# A ticket whose routing was not queued, or whose worker died, stays in `routing`: the sweep
# (tickets_stuck_requeue_task, every ROUTING_STUCK_SWEEP_SECONDS) routes it again.
_lane = BackgroundLane(
    "router", recovery="the stuck-ticket sweep routes it again", threads_setting="ROUTING_THREADS"
)


@shared_task(
    name="apps.orchestrator.tasks.ticket_route_task",
    bind=True,
    acks_late=True,
    max_retries=5,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    retry_jitter=True,
)
def ticket_route_task(self: Task[Any, Any], ticket_id: int) -> None:
    """Route one ticket through the orchestrator."""
    ticket = Ticket.objects.filter(pk=ticket_id).first()
    if ticket is None:
        return
    # The task's id names the run: a redelivery of this task takes its lease over at once.
    ticket_route(ticket=ticket, run_id=self.request.id)


@shared_task(name="apps.orchestrator.tasks.tickets_stuck_requeue_task")
def tickets_stuck_requeue_task() -> None:
    """Route again tickets that stayed in `routing` (a worker or process died mid-way)."""
    for ticket_id in tickets_stuck_requeue():
        logger.warning("ticket %s was still routing; routing it again", ticket_id)
        ticket_route_enqueue(ticket_id)


def ticket_route_enqueue(ticket_id: int) -> None:
    """Queue routing for a ticket (called after commit by the chat services)."""
    _lane.submit(ticket_route_task, ticket_id)

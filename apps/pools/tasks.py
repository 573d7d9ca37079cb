"""Pool work in the background: return tickets of offline agents and raise SLA breaches."""

from celery import shared_task

from apps.pools.presence import agents_offline_release
from apps.pools.services import tickets_sla_check


@shared_task
def agents_offline_release_task() -> None:
    """Return the tickets of agents offline past the grace period to their queues."""
    agents_offline_release()


@shared_task
def tickets_sla_check_task() -> None:
    """Mark tickets whose first reply is overdue as breached."""
    tickets_sla_check()

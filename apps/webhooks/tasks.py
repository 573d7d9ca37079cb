"""Webhook delivery in the background: one task per delivery, and a sweep for due retries.

With a broker, a failed attempt is retried by Celery after the exponential backoff
(`self.retry(countdown=...)`). Eager Celery (the embedded profile, tests) would run that retry
at once, inside the caller, so there the task records the next attempt time and returns; the
sweep (beat, every 15 s) sends it when it is due. The sweep also recovers
deliveries whose worker died mid-attempt.
"""

from datetime import timedelta
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from apps.core.background import BackgroundLane
from apps.webhooks.delivery import webhook_delivery_attempt
from apps.webhooks.models import WebhookDelivery
from apps.webhooks.selectors import webhook_delivery_list_due

# The delivery row is kept: the sweep sends it again when it is due or its lease runs out.
_lane = BackgroundLane("webhooks", recovery="the delivery sweep sends it again")
# With a broker, Celery's countdown retry is due first; the sweep waits this long past it.
STRAGGLER_GRACE = timedelta(minutes=1)


@shared_task(bind=True, acks_late=True, max_retries=None, autoretry_for=(DatabaseError,))
def webhook_delivery_task(self: Task[Any, Any], delivery_id: int) -> None:
    """Send one webhook delivery; with a broker, retry it after the backoff while it fails."""
    delivery = webhook_delivery_attempt(delivery_id=delivery_id)
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
        return
    if self.request.is_eager:
        return  # the sweep sends it when due: an eager retry would run now, in the caller
    assert delivery.next_attempt_at is not None
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    raise self.retry(countdown=max(0.0, wait))


@shared_task
def webhook_deliveries_retry_task() -> None:
    """Send the pending webhook deliveries whose next attempt is due."""
    now = timezone.now()
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        # With a broker Celery's own retry is on its way; the sweep only picks up stragglers.
        now -= STRAGGLER_GRACE
    webhook_deliveries_enqueue(webhook_delivery_list_due(now=now))


def webhook_deliveries_enqueue(ids: list[int]) -> None:
    """Queue deliveries for sending (called after commit by `webhook_event_emit`)."""
    for delivery_id in ids:
        _lane.submit(webhook_delivery_task, delivery_id)

"""Outgoing webhooks: queue an event for the subscribed endpoints.

An event becomes one `WebhookDelivery` row per subscribed endpoint, written in the caller's
transaction (so a rolled-back change sends nothing) and handed to the background after commit
(`tasks.py`), which sends, signs and retries it (`delivery.py`). See docs/webhooks.md.
"""

from collections.abc import Callable, Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.webhooks.models import WebhookDelivery, WebhookEvent
from apps.webhooks.selectors import webhook_endpoint_list_subscribed
from apps.webhooks.tasks import webhook_deliveries_enqueue


def webhook_event_emit(
    *, event: str, payload: Mapping[str, Any] | Callable[[], Mapping[str, Any]]
) -> list[WebhookDelivery]:
    """Queue `event` with `payload` for every active endpoint subscribed to it; the deliveries
    are sent after the current transaction commits. `payload` may be a function that builds
    it, called only when some endpoint subscribes (an event on a hot path, most desks none)."""
    if event not in WebhookEvent.values:
        raise ValueError(f"unknown webhook event {event!r}")
    endpoints = webhook_endpoint_list_subscribed(event=event)
    if not endpoints:
        return []
    body = dict(payload() if callable(payload) else payload)
    now = timezone.now()
    deliveries = [
        WebhookDelivery.objects.create(
            endpoint=endpoint, event=event, payload=dict(body), next_attempt_at=now
        )
        for endpoint in endpoints
    ]
    ids = [delivery.pk for delivery in deliveries]
    # Robust: a broker outage must not undo the business change; the retry sweep sends them.
    transaction.on_commit(lambda: webhook_deliveries_enqueue(ids), robust=True)
    return deliveries

"""Read-side queries for outgoing webhooks."""

from datetime import datetime

from apps.webhooks.models import WebhookDelivery, WebhookEndpoint


def webhook_endpoint_list_subscribed(*, event: str) -> list[WebhookEndpoint]:
    """Active endpoints that subscribe to `event`."""
    # A handful of rows: filtering the JSON list in Python works on every database backend.
    return [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(active=True)
        if event in endpoint.events
    ]


def webhook_delivery_list_due(*, now: datetime, limit: int = 100) -> list[int]:
    """Ids of pending deliveries whose next attempt is due at `now`, oldest first."""
    return list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
        )
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )

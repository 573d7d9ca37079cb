"""Read-side queries for outgoing webhooks."""

from datetime import datetime

from apps.core.sql import rows_where
from apps.webhooks.models import WebhookDelivery, WebhookEndpoint


def webhook_endpoint_list_subscribed(*, event: str) -> list[WebhookEndpoint]:
    """Active endpoints that subscribe to `event`."""
    # A handful of rows: filtering the JSON list in Python works on every database backend.
    # Every routed ticket asks: a statement written once (apps/core/sql.py).
    active = rows_where(WebhookEndpoint, [("active", "=", True)], order_by=["name", "id"])
    return [endpoint for endpoint in active if event in endpoint.events]


def webhook_delivery_list_due(*, now: datetime, limit: int = 100) -> list[int]:
    """Ids of pending deliveries whose next attempt is due at `now`, oldest first."""
    return list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
        )
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )

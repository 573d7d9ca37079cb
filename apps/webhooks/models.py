"""Outgoing webhooks: the endpoints integrators register and the log of every delivery."""

import secrets
import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q

from apps.core.models import TimeStampedModel


class WebhookEvent(models.TextChoices):
    TICKET_ROUTED = "ticket.routed", "ticket.routed — a ticket was put in a pool's queue"
    TICKET_RESOLVED = "ticket.resolved", "ticket.resolved — a ticket was resolved"
    REVIEW_CREATED = "review.created", "review.created — a ticket went to the review queue"
    ALERT_OPENED = "alert.opened", "alert.opened — an operations alert opened"


def webhook_secret_new() -> str:
    """A fresh signing secret (256 bits, URL-safe)."""
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookEndpoint(TimeStampedModel):
    """A URL that receives signed JSON for the events it subscribes to."""

    name = models.CharField(max_length=100)
    # Plain HTTP(S) only: the sender must not be pointed at ftp:// or file:// by a typo.
    url = models.URLField(max_length=500, validators=[URLValidator(schemes=["http", "https"])])
    secret = models.CharField(
        max_length=200,
        default=webhook_secret_new,
        help_text="Shared secret for the HMAC-SHA256 signature (give it to the receiver).",
    )
    # A list of WebhookEvent values; a list in JSON works on SQLite and PostgreSQL alike.
    events = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True, db_index=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.url})"


class WebhookDelivery(models.Model):
    """One event for one endpoint: what was sent, how often, and how it ended."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    # Receivers deduplicate on it: a retry after a lost answer repeats the same id.
    event_id = models.UUIDField(default=uuid.uuid4, editable=False, db_index=True)
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=32, choices=WebhookEvent.choices, db_index=True)
    payload = models.JSONField(
        encoder=DjangoJSONEncoder, help_text="The event's `data` object as sent (see docs)."
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # When a pending delivery may be tried next (after the backoff, or after a lost attempt).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.CheckConstraint(
                condition=Q(status="pending", next_attempt_at__isnull=False) | ~Q(status="pending"),
                name="pending_delivery_has_next_attempt",
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint_id} ({self.status})"

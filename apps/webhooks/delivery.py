"""Sending a webhook delivery: sign it, send it, record the answer and when to try again.

Each attempt POSTs the JSON envelope with an HMAC-SHA256 signature over `"{timestamp}.{body}"`;
a non-2xx answer or a network error is retried with exponential backoff up to
WEBHOOK_MAX_ATTEMPTS. Only public addresses (or hosts named in WEBHOOK_ALLOWED_HOSTS) are sent
to, and only a coarse reason is stored on failure (`transport.py`). See docs/webhooks.md.
"""

import hashlib
import hmac
import json
import logging
import time
from datetime import datetime, timedelta

from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import F
from django.utils import timezone

from apps.webhooks.models import WebhookDelivery
from apps.webhooks.transport import Answer, webhook_post

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-SupportDesk-Signature"
EVENT_HEADER = "X-SupportDesk-Event"
DELIVERY_HEADER = "X-SupportDesk-Delivery"
USER_AGENT = "SupportDesk-Webhooks/1"
Status = WebhookDelivery.Status


def webhook_body(*, delivery: WebhookDelivery) -> bytes:
    """The JSON envelope POSTed for a delivery: id, type, created_at and the event's data."""
    envelope = {
        "id": str(delivery.event_id),
        "type": delivery.event,
        "created_at": delivery.created_at.isoformat(),
        "data": delivery.payload,
    }
    return json.dumps(envelope, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def webhook_retry_delay(*, attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt (exponential, capped)."""
    seconds = get_exponential_backoff_interval(
        factor=settings.WEBHOOK_RETRY_BACKOFF_SECONDS,
        retries=attempts - 1,
        maximum=settings.WEBHOOK_RETRY_BACKOFF_MAX_SECONDS,
    )
    return timedelta(seconds=seconds)


def webhook_delivery_attempt(
    *, delivery_id: int, now: datetime | None = None
) -> WebhookDelivery | None:
    """Send one pending, due delivery once and record the answer and when to try again.

    Returns the delivery when this call sent it, None when there was nothing to send (gone,
    finished, not due yet, or another worker took this attempt).
    """
    now = now or timezone.now()
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != Status.PENDING:
        return None
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
        return None
    # Claim the attempt (a Celery retry and the sweep may meet). The lease makes the sweep try
    # again if this process dies mid-request.
    lease = now + timedelta(seconds=2 * settings.WEBHOOK_TIMEOUT_SECONDS + 60)
    claimed = WebhookDelivery.objects.filter(
        pk=delivery.pk, status=Status.PENDING, attempts=delivery.attempts
    ).update(attempts=F("attempts") + 1, last_attempt_at=now, next_attempt_at=lease)
    if not claimed:
        return None
    delivery.attempts += 1
    delivery.last_attempt_at = now
    endpoint = delivery.endpoint
    if not endpoint.active:
        return _record(delivery, Answer(None, "endpoint deactivated"), now, give_up=True)
    body = webhook_body(delivery=delivery)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: delivery.event,
        DELIVERY_HEADER: str(delivery.event_id),
        # Signed at send time: receivers reject stale timestamps, so each retry is signed anew.
        SIGNATURE_HEADER: webhook_signature(
            secret=endpoint.secret, timestamp=int(time.time()), body=body
        ),
    }
    # Resolved, checked against private addresses and sent to the checked address (transport).
    answer = webhook_post(
        url=endpoint.url, body=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS
    )
    return _record(delivery, answer, max(now, timezone.now()))


def _record(
    delivery: WebhookDelivery, answer: Answer, now: datetime, *, give_up: bool = False
) -> WebhookDelivery:
    delivery.status_code = answer.status_code
    if answer.status_code is not None and 200 <= answer.status_code < 300:
        delivery.status, delivery.error = Status.DELIVERED, ""
        delivery.delivered_at, delivery.next_attempt_at = now, None
        logger.info(
            "webhook %s delivered to endpoint %s (attempt %d)",
            delivery.event,
            delivery.endpoint_id,
            delivery.attempts,
        )
    elif give_up or delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        delivery.status, delivery.error = Status.FAILED, answer.error
        delivery.failed_at, delivery.next_attempt_at = now, None
        logger.warning(
            "webhook %s to endpoint %s failed after %d attempts: %s",
            delivery.event,
            delivery.endpoint_id,
            delivery.attempts,
            answer.error,
        )
    else:
        delivery.error = answer.error
        delivery.next_attempt_at = now + webhook_retry_delay(attempts=delivery.attempts)
        logger.info(
            "webhook %s to endpoint %s: attempt %d failed (%s); next at %s",
            delivery.event,
            delivery.endpoint_id,
            delivery.attempts,
            answer.error,
            delivery.next_attempt_at.isoformat(),
        )
    delivery.save(
        update_fields=[
            "status",
            "status_code",
            "error",
            "attempts",
            "last_attempt_at",
            "next_attempt_at",
            "delivered_at",
            "failed_at",
        ]
    )
    return delivery

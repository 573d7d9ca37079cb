"""Webhook fixtures: a real receiver on 127.0.0.1 (allowed by name) and an endpoint pointed at
it; routing runs through the orchestrator's fixtures (pools, the Messages API stand-in)."""

from collections.abc import Iterator

import pytest

from apps.webhooks.models import WebhookEndpoint, WebhookEvent
from tests.fakes.fixtures import messages_api  # noqa: F401  (a fixture)
from tests.orchestrator.conftest import llm, pools  # noqa: F401  (fixtures)
from tests.webhooks.receiver import WebhookReceiver


@pytest.fixture
def receiver(settings) -> Iterator[WebhookReceiver]:
    """A receiver on 127.0.0.1: an internal address, so allowed by name, as an operator would
    allow an internal receiver (WEBHOOK_ALLOWED_HOSTS)."""
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    with WebhookReceiver() as started:
        yield started


@pytest.fixture
def endpoint(db, receiver: WebhookReceiver) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        name="CRM", url=receiver.url, events=list(WebhookEvent.values)
    )

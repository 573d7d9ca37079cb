"""Outgoing webhooks: signed JSON to a real receiver on 127.0.0.1, after commit, retried with
backoff and logged; events from routing (through the real SDK and the Messages API stand-in),
review, resolving and alerts (tests/reports/test_alerts.py)."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse

from apps.chat.models import Message
from apps.chat.services import conversation_create
from apps.flows.messages import message_post
from apps.flows.routing import ticket_route
from apps.pools.services import ticket_resolve
from apps.tickets.models import Ticket
from apps.webhooks.delivery import webhook_delivery_attempt
from apps.webhooks.models import WebhookDelivery, WebhookEndpoint
from apps.webhooks.services import webhook_event_emit
from apps.webhooks.tasks import webhook_deliveries_retry_task
from tests.orchestrator.conftest import route_reply
from tests.webhooks.receiver import signature_valid

pytestmark = pytest.mark.django_db
Status = WebhookDelivery.Status
SECRET_TEXT = "My card 4111 1111 1111 1111 was charged twice, I am Ada Lovelace"


def route_text(text: str, capture) -> Ticket:
    """A customer's message opens a ticket; routing and its webhooks run after commit."""
    conversation = conversation_create(name="Ada Lovelace", email="ada@example.com").conversation
    with capture(execute=True):
        message_post(conversation=conversation, text=text, sender=Message.Sender.CUSTOMER)
        ticket = Ticket.objects.get(conversation=conversation)
        ticket_route(ticket=ticket)
    ticket.refresh_from_db()
    return ticket


def test_routed_ticket_posts_signed_json_without_the_customers_words(
    pools, llm, endpoint, receiver, django_capture_on_commit_callbacks
):
    llm.enqueue(route_reply("billing", 0.93))
    ticket = route_text(SECRET_TEXT, django_capture_on_commit_callbacks)

    [request] = receiver.of_type("ticket.routed")
    assert ticket.queued_at
    assert ticket.sla_due_at
    assert signature_valid(request, endpoint.secret)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-supportdesk-event"] == "ticket.routed"
    event = request.json
    assert event["data"] == {
        "ticket": ticket.pk,
        "conversation": str(ticket.conversation_id),
        "status": "queued",
        "pool": "billing",
        "created_at": ticket.created_at.isoformat(),
        "previous_pool": None,
        "routed_by": "router",
        "tier": "llm",
        "human_requested": False,
        "queued_at": ticket.queued_at.isoformat(),
        "sla_due_at": ticket.sla_due_at.isoformat(),
    }
    delivery = WebhookDelivery.objects.get(event="ticket.routed")
    assert event["id"] == request.headers["x-supportdesk-delivery"] == str(delivery.event_id)
    for secret_bit in ("4111", "charged twice", "Ada", "ada@example.com"):
        assert secret_bit not in request.body.decode()
    assert (delivery.status, delivery.attempts, delivery.status_code) == (Status.DELIVERED, 1, 200)
    assert delivery.delivered_at is not None


def test_a_tampered_body_or_another_secret_fails_verification(
    pools, llm, endpoint, receiver, django_capture_on_commit_callbacks
):
    llm.enqueue(route_reply("technical", 0.9))
    route_text("The app crashes on start", django_capture_on_commit_callbacks)
    [request] = receiver.received
    assert signature_valid(request, endpoint.secret)
    assert not signature_valid(request, "whsec_other")
    tampered = type(request)(request.path, request.headers, request.body.replace(b"1", b"2", 1))
    assert not signature_valid(tampered, endpoint.secret)


def test_low_confidence_routing_sends_review_created(
    pools, llm, endpoint, receiver, django_capture_on_commit_callbacks
):
    llm.enqueue(route_reply("billing", 0.3), route_reply("billing", 0.3))
    ticket = route_text("hmm something about my thing", django_capture_on_commit_callbacks)
    assert ticket.status == Ticket.Status.IN_REVIEW

    [request] = receiver.of_type("review.created")
    assert signature_valid(request, endpoint.secret)
    data = request.json["data"]
    assert data["ticket"] == ticket.pk
    assert data["reason"] == "low_confidence"
    assert data["tier"] == "review"
    assert data["review_item"] == ticket.review_items.get().pk
    assert not receiver.of_type("ticket.routed")


def test_resolving_a_ticket_sends_ticket_resolved(
    pools, llm, endpoint, receiver, django_capture_on_commit_callbacks
):
    llm.enqueue(route_reply("billing", 0.93))
    ticket = route_text("Why was I charged twice?", django_capture_on_commit_callbacks)
    boss = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    with django_capture_on_commit_callbacks(execute=True):
        ticket_resolve(ticket=ticket, actor=boss)

    [request] = receiver.of_type("ticket.resolved")
    assert signature_valid(request, endpoint.secret)
    data = request.json["data"]
    ticket.refresh_from_db()
    assert ticket.resolved_at is not None
    assert (data["ticket"], data["status"], data["pool"]) == (ticket.pk, "resolved", "billing")
    assert data["resolved_at"] == ticket.resolved_at.isoformat()
    assert data["sla_breached"] is False
    assert "boss" not in request.body.decode()


def test_a_reviewer_routing_sends_ticket_routed_by_staff(
    pools, llm, endpoint, receiver, django_capture_on_commit_callbacks
):
    from apps.review.services import review_item_resolve

    llm.enqueue(route_reply("billing", 0.3), route_reply("billing", 0.3))
    ticket = route_text("hmm something about my thing", django_capture_on_commit_callbacks)
    reviewer = get_user_model().objects.create_superuser("rev", "rev@example.com", "pw")
    with django_capture_on_commit_callbacks(execute=True):
        item = ticket.review_items.get()
        review_item_resolve(item=item, reviewer=reviewer, verdict="routed", pool=pools["refund"])
    [request] = receiver.of_type("ticket.routed")
    data = request.json["data"]
    assert (data["pool"], data["routed_by"], data["tier"]) == ("refund", "staff", None)


# transaction=True: real commits, so on_commit runs as in production.
@pytest.mark.django_db(transaction=True)
def test_events_wait_for_commit_and_a_rollback_sends_nothing(endpoint, receiver):
    with transaction.atomic():
        webhook_event_emit(event="ticket.resolved", payload={"ticket": 1})
        assert receiver.received == []  # not before commit
    assert len(receiver.received) == 1

    def change_that_fails() -> None:
        with transaction.atomic():
            webhook_event_emit(event="ticket.resolved", payload={"ticket": 2})
            raise RuntimeError("the change fails")

    with pytest.raises(RuntimeError):
        change_that_fails()
    assert len(receiver.received) == 1
    assert WebhookDelivery.objects.count() == 1


def test_only_active_endpoints_subscribed_to_the_event_receive_it(
    endpoint, receiver, django_capture_on_commit_callbacks
):
    WebhookEndpoint.objects.create(name="Only alerts", url=receiver.url, events=["alert.opened"])
    WebhookEndpoint.objects.create(
        name="Off", url=receiver.url, events=["ticket.resolved"], active=False
    )
    with django_capture_on_commit_callbacks(execute=True):
        webhook_event_emit(event="ticket.resolved", payload={"ticket": 7})
    assert len(receiver.received) == 1
    assert WebhookDelivery.objects.get().endpoint == endpoint


def test_a_payload_built_on_demand_is_built_once_and_only_for_a_subscriber(
    receiver, django_capture_on_commit_callbacks
):
    """Hot paths (every routed ticket) pass a function: with nobody subscribed it is never
    called; with subscribers, once, and each of them gets what it returned."""
    built: list[int] = []

    def payload() -> dict[str, int]:
        built.append(1)
        return {"ticket": 9}

    assert webhook_event_emit(event="ticket.resolved", payload=payload) == []
    assert built == []
    for name in ("CRM", "Data warehouse"):
        WebhookEndpoint.objects.create(name=name, url=receiver.url, events=["ticket.resolved"])
    with django_capture_on_commit_callbacks(execute=True):
        deliveries = webhook_event_emit(event="ticket.resolved", payload=payload)
    assert built == [1]
    assert [d.endpoint.name for d in deliveries] == ["CRM", "Data warehouse"]
    assert [r.json["data"] for r in receiver.received] == [{"ticket": 9}, {"ticket": 9}]


def test_a_failing_receiver_is_retried_with_exponential_backoff_and_logged(
    endpoint, receiver, django_capture_on_commit_callbacks
):
    receiver.statuses.extend([500, 500])  # then 200
    with django_capture_on_commit_callbacks(execute=True):
        webhook_event_emit(event="ticket.resolved", payload={"ticket": 7})
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.status_code) == (Status.PENDING, 1, 500)
    assert delivery.error == "HTTP 500"
    # The backoff runs from the answer: 30 s after a failed first attempt, then doubling.
    assert delivery.next_attempt_at
    assert delivery.last_attempt_at
    waited = delivery.next_attempt_at - delivery.last_attempt_at
    assert timedelta(seconds=30) <= waited < timedelta(seconds=31)

    webhook_deliveries_retry_task.apply()  # not due yet: the eager task did not sleep or retry
    assert len(receiver.received) == 1

    webhook_delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Status.PENDING, 2)
    assert delivery.next_attempt_at
    assert delivery.last_attempt_at
    assert delivery.next_attempt_at - delivery.last_attempt_at == timedelta(seconds=60)

    webhook_delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.status_code) == (
        Status.DELIVERED,
        3,
        200,
    )
    assert delivery.error == ""
    assert WebhookDelivery.objects.filter(pk=delivery.pk, next_attempt_at=None).exists()
    assert len(receiver.received) == 3
    # Each attempt carries the same event id (receivers deduplicate) and its own valid signature.
    assert len({r.headers["x-supportdesk-delivery"] for r in receiver.received}) == 1
    assert all(signature_valid(r, endpoint.secret) for r in receiver.received)


def test_the_retry_sweep_sends_due_deliveries(
    settings, endpoint, receiver, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_RETRY_BACKOFF_SECONDS = 0
    receiver.statuses.append(503)
    with django_capture_on_commit_callbacks(execute=True):
        webhook_event_emit(event="alert.opened", payload={"alert": 1})
    assert WebhookDelivery.objects.get().status == Status.PENDING

    webhook_deliveries_retry_task.apply()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (Status.DELIVERED, 2)
    assert [r.json["type"] for r in receiver.received] == ["alert.opened", "alert.opened"]


def test_a_delivery_fails_for_good_after_the_last_attempt(
    settings, endpoint, receiver, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    settings.WEBHOOK_RETRY_BACKOFF_SECONDS = 0
    receiver.statuses.extend([500, 502, 500])
    with django_capture_on_commit_callbacks(execute=True):
        webhook_event_emit(event="ticket.resolved", payload={"ticket": 7})
    webhook_deliveries_retry_task.apply()
    webhook_deliveries_retry_task.apply()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.status_code) == (Status.FAILED, 2, 502)
    assert delivery.failed_at is not None
    assert len(receiver.received) == 2


def test_a_slow_receiver_costs_at_most_the_timeout(
    settings, endpoint, receiver, django_capture_on_commit_callbacks
):
    import time

    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    receiver.delay = 2.0
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        webhook_event_emit(event="ticket.resolved", payload={"ticket": 7})
    assert time.monotonic() - started < 1.5
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.status_code) == (Status.PENDING, None)
    assert "timeout" in delivery.error.lower() or "timed out" in delivery.error.lower()


def test_an_unreachable_endpoint_is_logged_as_a_connection_error(
    endpoint, django_capture_on_commit_callbacks
):
    from tests.servers import free_port

    endpoint.url = f"http://127.0.0.1:{free_port()}/nobody"
    endpoint.save()
    with django_capture_on_commit_callbacks(execute=True):
        webhook_event_emit(event="ticket.resolved", payload={"ticket": 7})
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == Status.PENDING
    assert "refused" in delivery.error.lower()


def test_admin_configures_an_endpoint_with_its_events(admin_client, receiver):
    response = admin_client.post(
        reverse("admin:webhooks_webhookendpoint_add"),
        {
            "name": "CRM",
            "url": receiver.url,
            "secret": "whsec_test",
            "events": ["ticket.resolved", "alert.opened"],
            "active": "on",
        },
    )
    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == ["alert.opened", "ticket.resolved"]
    page = admin_client.get(reverse("admin:webhooks_webhookdelivery_changelist"))
    assert page.status_code == 200


def test_admin_refuses_a_non_http_url(admin_client):
    response = admin_client.post(
        reverse("admin:webhooks_webhookendpoint_add"),
        {"name": "x", "url": "ftp://example.com/x", "secret": "s", "events": []},
    )
    assert response.status_code == 200
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_with_a_broker_a_celery_worker_retries_after_the_backoff(settings, endpoint, receiver):
    """Scale-out path: not eager, so the task retries itself with a countdown on a real worker
    (in-process, memory broker) instead of waiting for the sweep."""
    import time

    from celery.contrib.testing.worker import start_worker

    from supportdesk.celery import app

    settings.WEBHOOK_RETRY_BACKOFF_SECONDS = 1
    receiver.statuses.append(500)  # then 200
    was_eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        with start_worker(app, pool="solo", perform_ping_check=False):
            with transaction.atomic():
                webhook_event_emit(event="ticket.resolved", payload={"ticket": 7})
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                if WebhookDelivery.objects.filter(status=Status.DELIVERED).exists():
                    break
                time.sleep(0.1)
    finally:
        app.conf.task_always_eager = was_eager
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.status_code) == (
        Status.DELIVERED,
        2,
        200,
    )
    assert len(receiver.received) == 2
    assert delivery.delivered_at is not None
    assert delivery.last_attempt_at is not None
    # The second attempt waited for the backoff (1 s after the first answer).
    first, second = receiver.received
    assert second.at - first.at >= 0.9
    assert first.headers["x-supportdesk-delivery"] == second.headers["x-supportdesk-delivery"]

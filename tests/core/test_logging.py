"""JSON logs carry the request id (X-Request-ID in and out) and the ticket being routed."""

import copy
import io
import json
import logging
import logging.config

import pytest
from django.conf import settings as django_settings

from apps.chat.models import Message
from apps.chat.services import conversation_create
from apps.flows.messages import message_post
from apps.flows.routing import ticket_route
from apps.orchestrator.models import RoutingRule
from apps.tickets.models import Ticket
from supportdesk.asgi import application  # at import: it configures logging (django.setup)
from tests.orchestrator import conftest as orchestrator_fixtures
from tests.servers import free_port

pytestmark = pytest.mark.django_db

pools = orchestrator_fixtures.pools


@pytest.fixture
def json_logs():
    """The project's LOGGING with LOG_FORMAT=json at INFO, its console output captured."""
    config = copy.deepcopy(django_settings.LOGGING)
    config["handlers"]["console"]["formatter"] = "json"
    config["root"]["level"] = "INFO"
    logging.config.dictConfig(config)
    stream = io.StringIO()
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)

    def records() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield records
    logging.config.dictConfig(django_settings.LOGGING)


def test_a_log_line_written_during_a_request_carries_its_request_id_as_json(
    client, settings, json_logs
):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    response = client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a.42")
    assert response.status_code == 503  # the failed check is logged
    assert response["X-Request-ID"] == "lb-7f3a.42"
    (record,) = [r for r in json_logs() if r["logger"] == "apps.core.views"]
    assert record["request_id"] == "lb-7f3a.42"
    assert record["level"] == "WARNING"
    assert record["message"].startswith("health check cache failed")
    assert record["ticket_id"] is None
    assert "time" in record


def test_a_request_without_a_usable_id_gets_a_new_one(client):
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz", HTTP_X_REQUEST_ID="two words\tand a tab")["X-Request-ID"]
    assert len(first) == 32
    assert int(first, 16) >= 0
    assert second not in (first, "two words\tand a tab")
    assert len(second) == 32


async def test_the_request_id_also_comes_back_from_an_async_request(async_client):
    response = await async_client.get("/healthz", headers={"X-Request-ID": "async-1"})
    assert response["X-Request-ID"] == "async-1"


def test_routing_logs_carry_the_ticket_id_and_the_task_id(
    pools, json_logs, django_capture_on_commit_callbacks
):
    RoutingRule.objects.create(name="invoices", pattern="invoice", pool=pools["billing"])
    conversation = conversation_create().conversation
    with django_capture_on_commit_callbacks(execute=True):
        message_post(conversation=conversation, text="My invoice", sender=Message.Sender.CUSTOMER)
    ticket = Ticket.objects.get(conversation=conversation)
    logging.getLogger("tests").info("after the task")
    (routed,) = [r for r in json_logs() if r["message"].startswith(f"ticket {ticket.pk} routed")]
    assert routed["ticket_id"] == ticket.pk
    assert routed["logger"] == "apps.orchestrator.services"
    assert len(routed["request_id"]) == 36  # the Celery task's id (eager here)
    # Once the task is over, later lines are about no ticket.
    (after,) = [r for r in json_logs() if r["message"] == "after the task"]
    assert (after["ticket_id"], after["request_id"]) == (None, None)


def test_routing_outside_a_task_leaves_no_ticket_id_on_later_logs(pools, json_logs):
    # The embedded profile routes in a background thread, one ticket after another.
    RoutingRule.objects.create(name="invoices", pattern="invoice", pool=pools["billing"])
    conversation = conversation_create().conversation
    message_post(conversation=conversation, text="My invoice", sender=Message.Sender.CUSTOMER)
    ticket = Ticket.objects.get(conversation=conversation)
    ticket_route(ticket=ticket)
    logging.getLogger("tests").info("after routing")
    (routed,) = [r for r in json_logs() if r["message"].startswith(f"ticket {ticket.pk} routed")]
    assert routed["ticket_id"] == ticket.pk
    (after,) = [r for r in json_logs() if r["message"] == "after routing"]
    assert after["ticket_id"] is None


@pytest.mark.django_db(transaction=True)
async def test_each_chat_frame_gets_its_own_request_id_down_to_the_routing_logs(json_logs):
    import uuid as uuid_module

    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator

    from apps.pools.services import pool_upsert

    @database_sync_to_async
    def setup():
        pool = pool_upsert(slug="billing", name="Billing", description="Invoices and payments")
        RoutingRule.objects.create(name="invoices", pattern="invoice", pool=pool)
        return conversation_create()

    created = await setup()
    ws = WebsocketCommunicator(
        application, "/ws/chat/", headers=[(b"origin", b"http://127.0.0.1:8000")]
    )
    assert (await ws.connect())[0]
    try:
        await ws.send_json_to(
            {
                "type": "hello",
                "conversation": str(created.conversation.id),
                "token": created.token,
                "last_seq": 0,
            }
        )
        await ws.receive_json_from()
        for text in ("My invoice is wrong", "And the other invoice too"):
            frame = {"type": "message", "client_id": str(uuid_module.uuid4()), "text": text}
            await ws.send_json_to(frame)
            await ws.receive_json_from()
    finally:
        await ws.disconnect()

    # Routing ran (eagerly) inside the first message frame: its log lines carry that frame's
    # id, and no line outside a frame does.
    records = json_logs()
    (routed,) = [r for r in records if "routed:" in r["message"]]
    frame_id = routed["request_id"]
    assert frame_id is not None
    assert len(frame_id) == 32  # a uuid4 made for the frame, not a Celery task id (36)
    assert routed["ticket_id"] is not None
    tasks = [r for r in records if r["logger"] == "celery.app.trace"]
    assert tasks
    assert {r["request_id"] for r in tasks} == {frame_id}

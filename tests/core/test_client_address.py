"""A client is the address the server sees (issue 12, finding 1): throttles, rate limits, socket
bounds and logs never take a client's X-Forwarded-For for its address."""

import pytest
from channels.testing import WebsocketCommunicator
from django.core.cache import cache
from django.test import override_settings
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from apps.core.consumers import ClientBoundsMixin, OutageAwareConsumer, _sockets_per_address
from apps.core.ratelimit import rate_limit_reset
from supportdesk.asgi import application

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


@pytest.fixture(autouse=True)
def _fresh_counters():
    cache.clear()
    rate_limit_reset()
    yield
    cache.clear()
    rate_limit_reset()


def test_a_forged_x_forwarded_for_does_not_escape_the_conversation_throttle(db, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"conversation_create": "3/hour"})
    client = APIClient()
    plain = [client.post("/api/v1/conversations/", {}, format="json").status_code for _ in range(5)]
    forged = [
        client.post(
            "/api/v1/conversations/", {}, format="json", HTTP_X_FORWARDED_FOR=f"10.9.8.{n}"
        ).status_code
        for n in range(5)
    ]
    assert plain == [201, 201, 201, 429, 429]
    assert forged == [429] * 5


def socket_from(address: str, path: str = "/ws/chat/") -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, headers=[ORIGIN])
    communicator.scope["client"] = (address, 50000)
    return communicator


@pytest.mark.django_db(transaction=True)
@override_settings(SOCKETS_PER_ADDRESS_MAX=2)
async def test_open_sockets_per_address_are_bounded_and_counted_per_address():
    first, second = socket_from("10.0.0.7"), socket_from("10.0.0.7")
    other = socket_from("10.0.0.8")
    assert (await first.connect())[0]
    assert (await second.connect())[0]
    third = socket_from("10.0.0.7")
    connected, _ = await third.connect()
    assert connected  # accepted to be told why, then closed
    refusal = await third.receive_json_from()
    assert refusal["code"] == "too_many_connections"
    assert (await third.receive_output())["code"] == 4429
    # Another address is not affected; a slot freed is a slot to use.
    assert (await other.connect())[0]
    await first.disconnect()
    again = socket_from("10.0.0.7")
    assert (await again.connect())[0]
    assert await again.receive_nothing(timeout=0.2)
    for communicator in (second, other, again):
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
@override_settings(SOCKET_CONNECT_RATE="3/minute")
async def test_new_sockets_per_address_are_rate_limited():
    for _ in range(3):
        communicator = socket_from("10.0.0.9")
        assert (await communicator.connect())[0]
        assert await communicator.receive_nothing(timeout=0.1)
        await communicator.disconnect()
    refused = socket_from("10.0.0.9")
    await refused.connect()
    assert (await refused.receive_json_from())["code"] == "too_many_connections"
    assert (await refused.receive_output())["code"] == 4429


@pytest.mark.django_db(transaction=True)
@override_settings(CHAT_MAX_FRAMES_BEFORE_HELLO=3)
async def test_a_socket_that_sends_frames_without_hello_is_closed():
    communicator = socket_from("10.0.0.10")
    await communicator.connect()
    for _ in range(3):
        await communicator.send_json_to({"type": "typing"})
        assert (await communicator.receive_json_from())["code"] == "hello_required"
    await communicator.send_json_to({"type": "typing"})
    assert (await communicator.receive_json_from())["code"] == "hello_required"
    assert (await communicator.receive_output())["code"] == 4401


class CrashingConsumer(ClientBoundsMixin, OutageAwareConsumer):
    """A consumer with a bug: its first frame raises."""

    async def receive(self, text_data=None, bytes_data=None):
        raise RuntimeError("a bug")


@pytest.mark.django_db(transaction=True)
@override_settings(SOCKETS_PER_ADDRESS_MAX=1)
async def test_a_socket_that_crashed_gives_its_address_its_slot_back():
    for _ in range(3):  # with the slot leaked, the second socket would be refused
        communicator = WebsocketCommunicator(CrashingConsumer.as_asgi(), "/", headers=[ORIGIN])
        communicator.scope["client"] = ("10.0.0.11", 50000)
        assert (await communicator.connect())[0]
        await communicator.send_to(text_data="boom")
        with pytest.raises(RuntimeError, match="a bug"):
            await communicator.wait(timeout=2)
    assert "10.0.0.11" not in _sockets_per_address

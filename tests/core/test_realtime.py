"""Publishing after commit: in order, in one trip, and a failed send never stops the others."""

import asyncio
import time

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from apps.core import realtime
from apps.core.realtime import group_send_many, publish_many_on_commit


def _receive_all(layer, channel):
    """Every message waiting on `channel` (stops after 0.2 s of quiet)."""
    received = []

    async def drain():
        while True:
            try:
                async with asyncio.timeout(0.2):
                    received.append(await layer.receive(channel))
            except TimeoutError:
                return

    async_to_sync(drain)()
    return received


def test_sends_in_order_and_a_failing_group_does_not_stop_the_rest(caplog):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("good", channel)
    group_send_many(
        [
            ("good", {"type": "x", "n": 1}),
            ("bad group name!", {"type": "x", "n": 2}),  # refused by the layer
            ("good", {"type": "x", "n": 3}),
        ]
    )
    assert [message["n"] for message in _receive_all(layer, channel)] == [1, 3]
    assert "group_send to bad group name! failed" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_nothing_is_sent_before_commit_or_after_a_rollback():
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("room", channel)

    def rolled_back():
        with transaction.atomic():
            publish_many_on_commit([("room", {"type": "x", "n": 0})])
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        rolled_back()
    with transaction.atomic():
        publish_many_on_commit([("room", {"type": "x", "n": 1}), ("room", {"type": "x", "n": 2})])
        assert _receive_all(layer, channel) == []  # not before commit
    assert [message["n"] for message in _receive_all(layer, channel)] == [1, 2]


class _GatedLayer:
    """A channel layer whose sends wait for a gate: shows who waits for them."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.sent: list[int] = []

    async def group_send(self, group, message):
        await self.gate.wait()
        self.sent.append(message["n"])


def test_a_thread_hands_its_sends_to_the_bound_loop_without_waiting(monkeypatch):
    """The database thread must not wait for the loop to run its sends (it serves every socket):
    with a bound loop it hands them over and goes on; the loop sends them in commit order."""
    layer = _GatedLayer()
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: layer)

    async def scenario():
        realtime.publisher_bind()
        started = time.monotonic()
        # Two commits in a worker thread, the way services publish after commit.
        await asyncio.to_thread(group_send_many, [("g", {"n": 1}), ("g", {"n": 2})])
        await asyncio.to_thread(group_send_many, [("g", {"n": 3})])
        handed_over_in = time.monotonic() - started
        assert layer.sent == []  # nothing sent yet: the thread did not wait for it
        layer.gate.set()
        for _ in range(100):
            if len(layer.sent) == 3:
                break
            await asyncio.sleep(0.01)
        return handed_over_in

    assert asyncio.run(scenario()) < 1
    assert layer.sent == [1, 2, 3]


def test_without_a_running_bound_loop_the_thread_sends_itself(monkeypatch):
    layer = _GatedLayer()
    layer.gate.set()
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: layer)

    async def bind():
        realtime.publisher_bind()

    asyncio.run(bind())  # that loop is closed now
    group_send_many([("g", {"n": 1})])
    assert layer.sent == [1]

"""Publishing after commit: in order, in one trip, and a failed send never stops the others."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

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

"""The embedded profile's channel layer: Channels' in-memory layer with a cheap group send."""

import asyncio

from channels.layers import get_channel_layer

from apps.core.layers import LocalChannelLayer


def test_the_embedded_profile_uses_it():
    assert isinstance(get_channel_layer(), LocalChannelLayer)


def test_a_group_send_reaches_every_member_in_order_and_a_full_channel_misses_it_alone():
    layer = LocalChannelLayer(capacity=2)

    async def scenario():
        full, other = await layer.new_channel(), await layer.new_channel()
        for channel in (full, other):
            await layer.group_add("room", channel)
        await layer.send(full, {"type": "x", "n": 0})
        await layer.send(full, {"type": "x", "n": 0})  # full now
        for n in (1, 2):
            await layer.group_send("room", {"type": "x", "n": n})
        received = [(await layer.receive(other))["n"] for _ in range(2)]
        return received, [(await layer.receive(full))["n"] for _ in range(2)]

    received, full = asyncio.run(scenario())
    assert received == [1, 2]
    assert full == [0, 0]


def test_expired_messages_are_still_dropped_at_most_a_second_later():
    layer = LocalChannelLayer(expiry=0.05)

    async def scenario():
        channel = await layer.new_channel()
        await layer.group_add("room", channel)
        await layer.send(channel, {"type": "x"})
        await asyncio.sleep(0.1)  # expired, not yet dropped: cleaned less often than every call
        layer._cleaned_at = 0.0  # a second has gone by since the last clean
        await layer.group_send("other", {"type": "y"})
        return channel

    channel = asyncio.run(scenario())
    assert channel not in layer.channels  # its expired message was dropped...
    assert channel not in layer.groups.get("room", {})  # ...and with it its memberships

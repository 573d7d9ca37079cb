"""The embedded profile's channel layer: Channels' in-memory layer, made cheap per message.

Channels' `InMemoryChannelLayer` walks every channel and every group membership of the process
on each send to a group and on each receive (to drop expired messages), and starts a task per
member for each group send. With a few hundred sockets that walk was a fifth of the event loop's
time under load. Here the walk runs at most once a second (messages expire after a minute,
memberships after a day), and a group send puts the message on each member's queue in turn:
putting on an in-memory queue never waits.
"""

import contextlib
import time
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

CLEAN_EVERY_SECONDS = 1.0


class LocalChannelLayer(InMemoryChannelLayer):
    """One process's channel layer (the embedded profile); see the module's docstring."""

    _cleaned_at = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._cleaned_at < CLEAN_EVERY_SECONDS:
            return
        self._cleaned_at = now
        super()._clean_expired()

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, {})):
            with contextlib.suppress(ChannelFull):  # as Channels': a full channel misses it
                await self.send(channel, message)

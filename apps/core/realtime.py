"""Publish real-time events only after the database transaction commits.

Services call `publish_on_commit`; consumers never publish business events themselves. An event
published before commit could reach a client that then cannot find the row it refers to.

In a server process the sends leave from its event loop, through one queue in commit order
(`publisher_bind`): the thread that committed (the one database thread every socket shares, or a
background lane) hands them over and goes on with the next write instead of waiting for the loop
to run them. Elsewhere (a Celery worker, a management command, a test without sockets) they are
sent from the committing thread, which waits until they are out.
"""

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

# (group, message): one channel-layer send.
Publication = tuple[str, dict[str, Any]]


async def _send_all(publications: list[Publication]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group, message in publications:
        try:
            await layer.group_send(group, message)
        except Exception:
            # The event is stored; clients resync by seq. An outage must not fail the write.
            logger.exception("channel layer group_send to %s failed", group)


class _Publisher:
    """Sends what threads hand over, in the order they handed it, from one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[list[Publication]] = asyncio.Queue()
        self.task = loop.create_task(self._run(), name="realtime-publisher")

    async def _run(self) -> None:
        while True:
            publications = await self.queue.get()
            await _send_all(publications)

    def offer(self, publications: list[Publication]) -> bool:
        """Queue `publications` on the loop; False when the loop is gone (send them yourself)."""
        if self.task.done() or self.loop.is_closed() or not self.loop.is_running():
            return False
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, publications)
        except RuntimeError:  # closed meanwhile
            return False
        return True


_publisher: _Publisher | None = None


def publisher_bind() -> None:
    """Send this process's events from the running event loop (the server's; called by every
    socket as it connects, so the first one binds it)."""
    global _publisher
    loop = asyncio.get_running_loop()
    if _publisher is None or _publisher.loop is not loop or _publisher.task.done():
        _publisher = _Publisher(loop)


def group_send(group: str, message: dict[str, Any]) -> None:
    """Send one message to a channel-layer group (from synchronous code)."""
    group_send_many([(group, message)])


def group_send_many(publications: list[Publication]) -> None:
    """Send several messages, in order, in one trip.

    Each trip from a worker thread would block it until the loop ran the sends; a chat message
    fans out to several groups (its conversation, the desks), and the thread is the database
    thread that serves every socket. With a bound loop the trip is a hand-over that does not
    wait; without one, all the sends go in one trip.
    """
    if not publications or get_channel_layer() is None:
        return
    publisher = _publisher
    if publisher is not None and publisher.offer(publications):
        return
    async_to_sync(_send_all)(publications)


def publish_on_commit(group: str, message: dict[str, Any]) -> None:
    """Send `message` to `group` once the current transaction commits (at once if none)."""
    transaction.on_commit(lambda: group_send(group, message))


def publish_many_on_commit(publications: list[Publication]) -> None:
    """Send `publications`, in order and in one trip, once the current transaction commits."""
    if publications:
        transaction.on_commit(lambda: group_send_many(publications))

"""Publish real-time events only after the database transaction commits.

Services call `publish_on_commit`; consumers never publish business events themselves. An event
published before commit could reach a client that then cannot find the row it refers to.
"""

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def group_send(group: str, message: dict[str, Any]) -> None:
    """Send one message to a channel-layer group now (from synchronous code)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:
        # The event is stored; clients resync by seq. A layer outage must not fail the write.
        logger.exception("channel layer group_send to %s failed", group)


# (group, message): one channel-layer send.
Publication = tuple[str, dict[str, Any]]


def group_send_many(publications: list[Publication]) -> None:
    """Send several messages, in order, in one trip to the event loop.

    Each trip from a worker thread blocks it until the loop runs the send; a chat message fans
    out to several groups (its conversation, the desks), so one trip instead of one per group
    keeps the database thread that serves every socket free.
    """
    layer = get_channel_layer()
    if layer is None or not publications:
        return

    async def send_all() -> None:
        for group, message in publications:
            try:
                await layer.group_send(group, message)
            except Exception:
                # The event is stored; clients resync by seq. An outage must not fail the write.
                logger.exception("channel layer group_send to %s failed", group)

    async_to_sync(send_all)()


def publish_on_commit(group: str, message: dict[str, Any]) -> None:
    """Send `message` to `group` once the current transaction commits (at once if none)."""
    transaction.on_commit(lambda: group_send(group, message))


def publish_many_on_commit(publications: list[Publication]) -> None:
    """Send `publications`, in order and in one trip, once the current transaction commits."""
    if publications:
        transaction.on_commit(lambda: group_send_many(publications))

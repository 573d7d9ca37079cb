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


def publish_on_commit(group: str, message: dict[str, Any]) -> None:
    """Send `message` to `group` once the current transaction commits (at once if none)."""
    transaction.on_commit(lambda: group_send(group, message))

"""What the project's WebSocket consumers share: living through outages of their dependencies.

Two kinds of outage reach a socket:

- The database (PostgreSQL restarting, SQLite busy past its timeout) fails one frame's work.
  Its transaction rolled back, so the frame gets an `unavailable` error frame with
  `retry_after` and the socket stays open; the client sends the frame again (message frames
  are idempotent on `client_id`).
- The channel layer (Redis restarting) fails the socket's receive loop. Redis kept this
  process's group memberships, so after a restart no socket of the process would hear its
  events again, even one whose own receive happened to survive. Every socket of the process
  is therefore closed with 1012 (service restart); clients reconnect, join their groups anew
  and resync by `last_seq`, so each stored event still arrives once.
"""

import json
import logging
import weakref
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.core.errors import ServiceUnavailable
from apps.core.outages import (
    DATABASE_ERRORS,
    DEPENDENCY_ERRORS,
    REDIS_ERRORS,
    outage_error,
    outage_log,
)

logger = logging.getLogger(__name__)

# RFC 6455 §7.4.1 registry: the server is restarting / try again later; the client reconnects.
CLOSE_SERVICE_RESTART = 1012
CLOSE_TRY_AGAIN_LATER = 1013

# Every open socket of this process (one event loop), to close them all when the layer fails.
_open_sockets: "weakref.WeakSet[OutageAwareConsumer]" = weakref.WeakSet()


class OutageAwareConsumer(AsyncWebsocketConsumer):
    """Base of the chat and desk consumers: closes every socket of the process for a resync
    when the channel layer fails, and leaves groups without failing while Redis is away."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except REDIS_ERRORS as exc:
            outage_log(exc, where="the channel layer")
            await sockets_close_for_resync(first=self)

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        _open_sockets.add(self)
        try:
            await super().websocket_connect(message)
        except DATABASE_ERRORS as exc:
            # Nothing is known of the socket yet: let the client come back in a moment.
            outage_log(exc, where=f"{type(self).__name__} connect")
            await self.close(code=CLOSE_TRY_AGAIN_LATER)

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        try:
            await super().websocket_receive(message)
        except DATABASE_ERRORS as exc:
            # A consumer that knows more (the frame's client_id) answers before this does.
            await self.send_unavailable(outage_error(exc, where=type(self).__name__))

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        _open_sockets.discard(self)
        try:
            await super().websocket_disconnect(message)
        except DEPENDENCY_ERRORS as exc:
            # What disconnect would have recorded (an agent's presence) is swept later.
            outage_log(exc, where=f"{type(self).__name__} disconnect")
            raise StopConsumer() from exc

    async def group_leave(self, group: str) -> None:
        """Leave `group`; while Redis is away its memberships are gone with it anyway."""
        try:
            await self.channel_layer.group_discard(group, self.channel_name)
        except REDIS_ERRORS as exc:
            outage_log(exc, where="leaving a channel-layer group")

    async def send_unavailable(self, error: ServiceUnavailable, **extra: Any) -> None:
        """The frame's work met an outage and was rolled back: say when to send it again."""
        await self.send_json(
            {
                "type": "error",
                "code": error.code,
                "message": error.message,
                "retry_after": error.retry_after,
                **{key: value for key, value in extra.items() if value is not None},
            }
        )

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content))


async def sockets_close_for_resync(*, first: OutageAwareConsumer | None = None) -> int:
    """Close every open socket of this process with 1012 (`first`, whose receive failed, first).

    Returns how many were closed. A socket whose client is already gone is skipped.
    """
    consumers = [first] if first is not None else []
    consumers += [consumer for consumer in list(_open_sockets) if consumer is not first]
    _open_sockets.clear()
    closed = 0
    for consumer in consumers:
        try:
            await consumer.close(code=CLOSE_SERVICE_RESTART)
            closed += 1
        except (OSError, RuntimeError):
            continue  # the client left meanwhile
    logger.warning("closed %d sockets of this process so that they resync", closed)
    return closed

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
  and resync by `last_seq`, so each stored event still arrives once. A restart too quick for
  any receive to notice is caught by a watch on Redis's `run_id` (every
  CHANNEL_LAYER_WATCH_SECONDS), which closes the sockets the same way.
"""

import asyncio
import json
import logging
import weakref
from collections import Counter
from typing import Any

import redis.exceptions
from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from apps.core.clients import scope_client_address
from apps.core.errors import RateLimited, ServiceUnavailable
from apps.core.outages import (
    DATABASE_ERRORS,
    DEPENDENCY_ERRORS,
    REDIS_ERRORS,
    outage_error,
    outage_log,
)
from apps.core.ratelimit import rate_limit_hit
from apps.core.realtime import publisher_bind

logger = logging.getLogger(__name__)

# RFC 6455 §7.4.1 registry: the server is restarting / try again later; the client reconnects.
CLOSE_SERVICE_RESTART = 1012
CLOSE_TRY_AGAIN_LATER = 1013
# Too many sockets from the client's address: it may come back later (the widget backs off).
CLOSE_TOO_MANY_SOCKETS = 4429

# Every open socket of this process (one event loop), to close them all when the layer fails.
_open_sockets: "weakref.WeakSet[OutageAwareConsumer]" = weakref.WeakSet()


# Open sockets of this process per client address (SOCKETS_PER_ADDRESS_MAX).
_sockets_per_address: Counter[str] = Counter()


class ClientBoundsMixin:
    """Bounds what one client address may hold: new sockets per minute (SOCKET_CONNECT_RATE,
    shared by every process through the rate-limit storage) and open sockets at once in this
    process (SOCKETS_PER_ADDRESS_MAX). A socket over either is accepted, told why with a
    `too_many_connections` error frame, and closed with 4429."""

    scope: dict[str, Any]
    client_address = ""
    _counted = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)  # type: ignore[misc]
        finally:
            # However the socket ended: a crash or a closed layer skips websocket_disconnect.
            self._uncount()

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        self.client_address = scope_client_address(self.scope)
        refusal = await self._connection_refusal()
        if refusal is not None:
            await self.accept()  # type: ignore[attr-defined]
            await self.send_json(  # type: ignore[attr-defined]
                {"type": "error", "code": "too_many_connections", "message": refusal}
            )
            await self.close(code=CLOSE_TOO_MANY_SOCKETS)  # type: ignore[attr-defined]
            return
        _sockets_per_address[self.client_address] += 1
        self._counted = True
        await super().websocket_connect(message)  # type: ignore[misc]

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        self._uncount()
        await super().websocket_disconnect(message)  # type: ignore[misc]

    def _uncount(self) -> None:
        if self._counted:
            self._counted = False
            _sockets_per_address[self.client_address] -= 1
            if _sockets_per_address[self.client_address] <= 0:
                del _sockets_per_address[self.client_address]

    async def _connection_refusal(self) -> str | None:
        if _sockets_per_address[self.client_address] >= settings.SOCKETS_PER_ADDRESS_MAX:
            return "Too many open connections from your network. Please try again later."
        try:
            await sync_to_async(rate_limit_hit, thread_sensitive=False)(
                scope="socket_connect",
                key=self.client_address,
                rate=settings.SOCKET_CONNECT_RATE,
            )
        except RateLimited:
            return "Too many new connections from your network. Please try again later."
        return None


class OutageAwareConsumer(AsyncWebsocketConsumer):
    """Base of the chat and desk consumers: closes every socket of the process for a resync
    when the channel layer fails, and leaves groups without failing while Redis is away."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except redis.exceptions.MaxConnectionsError as exc:
            # This process ran out of connections, Redis is fine: only this socket comes back
            # later; the others keep their groups.
            outage_log(exc, where="the channel layer's connection pool")
            await self.close(code=CLOSE_TRY_AGAIN_LATER)
        except REDIS_ERRORS as exc:
            outage_log(exc, where="the channel layer")
            await sockets_close_for_resync(first=self)

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        _open_sockets.add(self)
        layer_watch_ensure()
        publisher_bind()
        try:
            await super().websocket_connect(message)
        except DATABASE_ERRORS as exc:
            # Nothing is known of the socket yet: let the client come back in a moment.
            outage_log(exc, where=f"{type(self).__name__} connect")
            await self.close(code=CLOSE_TRY_AGAIN_LATER)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Run the handler of `message` (a frame, a group event) on the event loop.

        Channels (4.2+) first closes old database connections on every message, through the
        process's one database thread: each frame and each event relayed to each socket then
        waits in line behind the writes of every other socket (it was most of a chat message's
        round trip under load). Our handlers reach the database only through
        `database_sync_to_async`, which closes old connections around each call in that thread,
        so the extra trip guards nothing here.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

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


# The watch of this process (one event loop), started by its first socket.
_watch: "asyncio.Task[None] | None" = None


def layer_watch_ensure() -> None:
    """Start the Redis restart watch of this process if a Redis channel layer is in use."""
    global _watch
    interval = settings.CHANNEL_LAYER_WATCH_SECONDS
    if _watch is not None and not _watch.done():
        return
    layer = get_channel_layer()
    if interval <= 0 or not hasattr(layer, "ring_size"):
        return  # the in-memory layer lives and dies with the process: nothing to watch
    _watch = asyncio.get_running_loop().create_task(_layer_watch(layer, interval))


async def _layer_watch(layer: Any, interval: float) -> None:
    """Close every socket of the process for a resync when a Redis of the layer restarted
    (its `run_id` changed) or cannot be reached; memberships did not survive either."""
    known: list[str] | None = None
    while True:
        await asyncio.sleep(interval)
        try:
            run_ids = [
                (await layer.connection(index).info("server"))["run_id"]
                for index in range(layer.ring_size)
            ]
        except REDIS_ERRORS as exc:
            if _open_sockets:
                outage_log(exc, where="the channel layer watch")
                await sockets_close_for_resync()
            known = None  # whatever answers next is a new baseline: its sockets joined it
            continue
        if known is not None and run_ids != known and _open_sockets:
            logger.warning("Redis restarted (its run_id changed); group memberships are gone")
            await sockets_close_for_resync()
        known = run_ids

"""The customer's WebSocket: authenticate, validate frames, call services, relay events."""

import asyncio
import contextlib
import logging
import time
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from apps.chat import selectors, services
from apps.chat.frames import (
    CustomerTypingFrame,
    HandoffFrame,
    HelloFrame,
    MessageFrame,
    frame_parse,
)
from apps.chat.models import Conversation, Message
from apps.core.batching import Batcher
from apps.core.consumers import CLOSE_TRY_AGAIN_LATER, ClientBoundsMixin, OutageAwareConsumer
from apps.core.errors import ApplicationError
from apps.core.logging import FrameRequestIdMixin
from apps.core.outages import DATABASE_ERRORS, outage_error
from apps.flows import messages as flows

logger = logging.getLogger(__name__)

CLOSE_AUTH_FAILED = 4401
CLOSE_ORIGIN_NOT_ALLOWED = 4403
REPLAY_BATCH = 500

# The messages of every socket of this process, written in group commits (apps/core/batching.py).
customer_messages: Batcher[flows.NewMessage, flows.MessagePosted] = Batcher(flows.messages_post)


def origin_allowed(scope: dict[str, Any]) -> bool:
    """Whether the page that opened the socket is on an allowed origin."""
    allowed = settings.CHAT_ALLOWED_ORIGINS
    if "*" in allowed:
        return True
    headers = dict(scope.get("headers", []))
    origin = headers.get(b"origin", b"").decode("latin-1")
    return origin in allowed


class CustomerChatConsumer(FrameRequestIdMixin, ClientBoundsMixin, OutageAwareConsumer):
    """`/ws/chat/`. See docs/protocol.md for the frames."""

    conversation: Conversation | None = None
    group: str | None = None
    sent_seq = 0  # highest event seq sent on this socket: nothing at or below it is sent again
    frames_before_hello = 0
    hello_deadline: asyncio.Task[None] | None = None
    resync: asyncio.Task[None] | None = None
    last_event_at = 0.0  # monotonic time of the last stored event sent on this socket

    async def connect(self) -> None:
        await self.accept()
        if not origin_allowed(self.scope):
            await self.send_error("origin_not_allowed", "This page may not open the chat.")
            await self.close(code=CLOSE_ORIGIN_NOT_ALLOWED)
            return
        # A socket that never authenticates must not hold a connection slot forever.
        self.hello_deadline = asyncio.create_task(self.close_without_hello())

    async def close_without_hello(self) -> None:
        await asyncio.sleep(settings.CHAT_HELLO_TIMEOUT_SECONDS)
        await self.send_error("hello_timeout", "No hello frame arrived in time.")
        await self.close(code=CLOSE_AUTH_FAILED)

    async def disconnect(self, code: int) -> None:
        for task in (self.hello_deadline, self.resync):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.group is not None:
            await self.group_leave(self.group)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        client_id: str | None = None
        if self.conversation is None:
            # A socket that is not a customer's yet may not keep the server busy with frames.
            self.frames_before_hello += 1
            if self.frames_before_hello > settings.CHAT_MAX_FRAMES_BEFORE_HELLO:
                await self.send_error("hello_required", "Too many frames before a hello.")
                await self.close(code=CLOSE_AUTH_FAILED)
                return
        try:
            frame = frame_parse(text_data, max_bytes=settings.CHAT_MAX_FRAME_BYTES)
            if isinstance(frame, HelloFrame):
                await self.on_hello(frame)
                return
            if self.conversation is None:
                await self.send_error("hello_required", "Send a hello frame first.")
                return
            if isinstance(frame, MessageFrame):
                client_id = str(frame.client_id)
                await self.on_message(frame)
            elif isinstance(frame, CustomerTypingFrame):
                await database_sync_to_async(services.conversation_typing_publish)(
                    conversation_id=self.conversation.id,
                    sender=Message.Sender.CUSTOMER,
                    origin=self.channel_name,
                )
            elif isinstance(frame, HandoffFrame):
                # What follows (a bot message, a status) comes back as events.
                await database_sync_to_async(flows.conversation_handoff)(
                    conversation=self.conversation
                )
        except ApplicationError as exc:
            await self.send_error(exc.code, exc.message, client_id=client_id, **exc.extra)
        except DATABASE_ERRORS as exc:
            # Rolled back: the client sends the same frame again after `retry_after`.
            await self.send_unavailable(outage_error(exc, where="chat frame"), client_id=client_id)
            if self.conversation is None:
                # Not authenticated yet: reconnecting is the client's way to say hello again.
                await self.close(code=CLOSE_TRY_AGAIN_LATER)

    async def on_hello(self, frame: HelloFrame) -> None:
        if self.conversation is not None:
            await self.send_error("already_authenticated", "This socket is already authenticated.")
            return
        conversation = await database_sync_to_async(selectors.conversation_authenticate)(
            conversation_id=frame.conversation, token=frame.token
        )
        if conversation is None:
            await self.send_error("auth_failed", "Unknown conversation or wrong token.")
            await self.close(code=CLOSE_AUTH_FAILED)
            return
        self.conversation = conversation
        if self.hello_deadline is not None:
            self.hello_deadline.cancel()
        # Join before reading the log: an event committed meanwhile arrives through the group
        # too, and `sent_seq` drops the copy.
        self.group = services.conversation_group(conversation.id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        latest = await database_sync_to_async(self._latest_seq)()
        await self.send_json({"type": "welcome", "seq": latest})
        self.sent_seq = min(frame.last_seq, latest)
        await self.send_missed(until=None)
        self.last_event_at = time.monotonic()
        if settings.CHAT_RESYNC_SECONDS > 0:
            self.resync = asyncio.create_task(self.resync_while_quiet())

    async def resync_while_quiet(self) -> None:
        """Read the log when the socket has heard nothing for CHAT_RESYNC_SECONDS.

        An event is stored in the transaction of its change and published after commit; a
        process killed between the two (a worker SIGKILLed right after routing a ticket) leaves
        it stored but unannounced, and a quiet socket would never learn of it. One indexed read
        per quiet socket per period bounds how late such an event arrives.
        """
        interval = settings.CHAT_RESYNC_SECONDS
        while True:
            await asyncio.sleep(interval)
            if time.monotonic() - self.last_event_at >= interval:
                await self.send_missed(until=None)
                self.last_event_at = time.monotonic()

    async def on_message(self, frame: MessageFrame) -> None:
        assert self.conversation is not None
        await customer_messages.submit(
            flows.NewMessage(
                conversation=self.conversation,
                text=frame.text,
                sender=Message.Sender.CUSTOMER,
                client_id=frame.client_id,
            )
        )
        # The stored message comes back to every socket, this one included, as an event.

    async def conversation_event(self, message: dict[str, Any]) -> None:
        """A stored event published by a service; fill any gap from the log, never resend."""
        frame = message["frame"]
        seq = frame["seq"]
        if seq <= self.sent_seq:
            return
        if seq > self.sent_seq + 1:
            await self.send_missed(until=seq - 1)
            if seq <= self.sent_seq:
                return  # the resync sent it meanwhile
        # Marked sent before the send awaits: the resync task must not send it again.
        self.sent_seq = seq
        self.last_event_at = time.monotonic()
        await self.send_json(frame)

    async def conversation_typing(self, message: dict[str, Any]) -> None:
        if message["origin"] == self.channel_name or message["sender"] == Message.Sender.CUSTOMER:
            return
        await self.send_json({"type": "typing", "sender": message["sender"]})

    async def send_missed(self, *, until: int | None) -> None:
        assert self.conversation is not None
        while True:
            events = await database_sync_to_async(selectors.event_list_after)(
                conversation_id=self.conversation.id,
                after=self.sent_seq,
                until=until,
                limit=REPLAY_BATCH,
            )
            for event in events:
                if event.seq <= self.sent_seq:
                    continue  # sent meanwhile by the other of the group relay and the resync
                self.sent_seq = event.seq
                await self.send_json(event.frame())
            if len(events) < REPLAY_BATCH:
                return

    def _latest_seq(self) -> int:
        assert self.conversation is not None
        self.conversation.last_seq = selectors.conversation_last_seq(
            conversation_id=self.conversation.id
        )
        return self.conversation.last_seq

    async def send_error(self, code: str, message: str, **extra: Any) -> None:
        extra = {key: value for key, value in extra.items() if value is not None}
        await self.send_json({"type": "error", "code": code, "message": message, **extra})

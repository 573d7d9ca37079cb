"""The agent desk's WebSocket: authenticate, validate frames, call services, relay events."""

import uuid
from collections import deque
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from django.conf import settings
from django.http.request import validate_host

from apps.chat import services as chat_services
from apps.chat.models import Message
from apps.core.consumers import ClientBoundsMixin, OutageAwareConsumer
from apps.core.errors import ApplicationError, NotFound, ServiceUnavailable
from apps.core.logging import FrameRequestIdMixin
from apps.desk import partials
from apps.desk.frames import (
    DeskTypingFrame,
    PingFrame,
    PresenceFrame,
    SubscribeFrame,
    UnsubscribeFrame,
    ViewFrame,
    desk_frame_parse,
)
from apps.desk.page_socket import DeskPageRelay
from apps.pools import presence
from apps.pools import selectors as pool_selectors
from apps.tickets.realtime import DESK_ALL, desk_pool_group, desk_ticket_group, desk_user_group

CLOSE_AUTH_FAILED = 4401
CLOSE_ORIGIN_NOT_ALLOWED = 4403
TICKET_EVENT_FIELDS = ("ticket", "change", "status", "pool", "assignee")


def desk_origin_allowed(scope: dict[str, Any]) -> bool:
    """Whether the page that opened the socket is one of the site's own.

    The desk is authenticated by the session cookie: a page on any other origin (even one
    allowed to embed the widget, which is authenticated by its token) must not open it.
    """
    headers = dict(scope.get("headers", []))
    origin = headers.get(b"origin", b"").decode("latin-1")
    if not origin:
        return False
    # Like channels' AllowedHostsOriginValidator: the origin's host against ALLOWED_HOSTS. The
    # pages that embed the widget (CHAT_ALLOWED_ORIGINS) are other people's: never the desk's.
    hostname = urlsplit(origin).hostname
    return hostname is not None and validate_host(hostname, settings.ALLOWED_HOSTS)


def desk_socket_is_page(scope: dict[str, Any]) -> bool:
    """Whether the desk page opened the socket (`?format=html`): it gets rendered HTML."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return query.get("format") == ["html"]


class DeskConsumer(FrameRequestIdMixin, ClientBoundsMixin, OutageAwareConsumer):
    """`/ws/desk/`. See docs/desk.md for the frames.

    Two kinds of client: integrations get JSON frames; the desk page (`?format=html`) gets the
    same events rendered as HTML pieces for htmx to swap in (`DeskPageRelay`). Every check of
    who may see what is made here, once, for both.
    """

    user: Any = None
    present = False  # this socket counted towards the agent's presence
    page: DeskPageRelay | None = None
    joined: set[str]
    # Followed tickets and their conversations (a conversation's events name no ticket).
    followed: dict[int, uuid.UUID]
    seen: deque[str]  # ids of recent queue events (each arrives once per group it was sent to)

    async def connect(self) -> None:
        self.joined = set()
        self.followed = {}
        self.seen = deque(maxlen=256)
        await self.accept()
        is_page = desk_socket_is_page(self.scope)
        if not desk_origin_allowed(self.scope):
            await self.send_error("origin_not_allowed", "This page may not open the desk.")
            await self.close(code=CLOSE_ORIGIN_NOT_ALLOWED)
            return
        user = self.scope.get("user")
        if user is None or not pool_selectors.user_is_staff(user):
            await self.send_error("auth_failed", "Sign in with a staff account to use the desk.")
            await self.close(code=CLOSE_AUTH_FAILED)
            return
        self.user = user
        if is_page:
            self.page = DeskPageRelay(user=user, send=self.send_html)
        pool_ids, supervisor = await database_sync_to_async(self._scope_of_user)()
        # Join before going online: tickets assigned by coming online are announced at once.
        groups = [desk_user_group(user.pk), *(desk_pool_group(pool_id) for pool_id in pool_ids)]
        if supervisor:
            groups.append(DESK_ALL)
        for group in groups:
            await self.join(group)
        profile = await database_sync_to_async(presence.agent_presence_connect)(user=user)
        self.present = True
        if self.page is not None:
            await self.page.presence(profile.presence)  # the page sends its view next
            return
        await self.send_json(
            {
                "type": "welcome",
                "user": {
                    "id": user.pk,
                    "username": user.get_username(),
                    "name": chat_services.staff_display_name(user),
                },
                "supervisor": supervisor,
                "pools": pool_ids,
                "presence": profile.presence,
            }
        )

    def _scope_of_user(self) -> tuple[list[int], bool]:
        return pool_selectors.user_pool_ids(user=self.user), pool_selectors.user_is_supervisor(
            self.user
        )

    async def disconnect(self, code: int) -> None:
        if self.page is not None:
            self.page.close()
        if self.present:
            self.present = False
            await database_sync_to_async(presence.agent_presence_disconnect)(user=self.user)
        for group in list(getattr(self, "joined", ())):
            await self.leave(group)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.present:
            return  # refused at connect; the close is on its way
        if not await database_sync_to_async(pool_selectors.user_id_is_staff)(user_id=self.user.pk):
            await self.revoke()  # deactivated, or no longer staff, since the socket opened
            return
        try:
            frame = desk_frame_parse(
                text_data, max_bytes=settings.CHAT_MAX_FRAME_BYTES, page=self.page is not None
            )
            match frame:
                case ViewFrame():
                    await self.on_view(frame)
                case SubscribeFrame():
                    await self.on_subscribe(frame.ticket)
                case UnsubscribeFrame():
                    await self.unfollow(frame.ticket)
                    await self.send_json(
                        {"type": "unsubscribed", "ticket": frame.ticket, "reason": "requested"}
                    )
                case DeskTypingFrame():
                    await self.on_typing(frame.ticket)
                case PresenceFrame():
                    profile = await database_sync_to_async(presence.agent_presence_set)(
                        user=self.user, presence=frame.presence
                    )
                    await self.send_presence(self.user.pk, profile.presence)
                case PingFrame():
                    await database_sync_to_async(presence.agent_presence_heartbeat)(user=self.user)
                    if self.page is None:  # the page needs no answer: a reply would swap nothing
                        await self.send_json({"type": "pong"})
        except ApplicationError as exc:
            await self.send_error(exc.code, exc.message, **exc.extra)

    async def on_view(self, frame: ViewFrame) -> None:
        """The page shows a queue and maybe a ticket: follow exactly that ticket (after the
        permission check) and render all of it, so that a page that just (re)connected misses
        nothing."""
        assert self.page is not None
        view = partials.desk_view_parse(tab=frame.tab, filter=frame.filter, ticket=frame.ticket)
        for ticket_id in list(self.followed):
            if ticket_id != view.ticket:
                await self.unfollow(ticket_id)
        visible = False
        if view.ticket is not None:
            try:
                await self.on_subscribe(view.ticket, answer=False)
                visible = True
            except NotFound:
                visible = False
        await self.page.show(view, visible=visible)

    async def on_subscribe(self, ticket_id: int, *, answer: bool = True) -> None:
        ticket = await database_sync_to_async(pool_selectors.ticket_get_visible)(
            user=self.user, ticket_id=ticket_id
        )
        await self.follow(ticket.pk, ticket.conversation_id)
        # A move committed between the check and the joins was announced to groups this socket
        # was not in yet: look once more now that it is.
        if not await self.can_access(ticket.pk):
            await self.unfollow(ticket.pk)
            raise NotFound("No such ticket.")
        if answer:
            await self.send_json({"type": "subscribed", "ticket": ticket.pk})

    async def on_typing(self, ticket_id: int) -> None:
        conversation_id = self.followed.get(ticket_id)
        if conversation_id is None:
            raise NotFound("Subscribe to the ticket first.")
        await database_sync_to_async(chat_services.conversation_typing_publish)(
            conversation_id=conversation_id,
            sender=Message.Sender.AGENT,
            origin=self.channel_name,
        )

    async def revoke(self) -> None:
        await self.send_error("auth_failed", "Your account may no longer use the desk.")
        await self.close(code=CLOSE_AUTH_FAILED)

    # --- group events ---------------------------------------------------------------------

    async def desk_revoked(self, message: dict[str, Any]) -> None:
        """The user was deactivated or lost staff status: this socket closes now."""
        await self.revoke()

    def first_time(self, message: dict[str, Any]) -> bool:
        """Whether this event (sent to each of several groups this socket is in) is new here."""
        event_id = message.get("id")
        if event_id is None:
            return True
        if event_id in self.seen:
            return False
        self.seen.append(event_id)
        return True

    async def desk_ticket(self, message: dict[str, Any]) -> None:
        """A ticket in one of this desk's queues changed; a followed one may have moved away."""
        if not self.first_time(message):
            return
        ticket_id = message["ticket"]
        if self.page is None:
            await self.send_json({"type": "ticket", **{k: message[k] for k in TICKET_EVENT_FIELDS}})
        if ticket_id in self.followed and not await self.can_access(ticket_id):
            await self.access_lost(ticket_id)
        elif self.page is not None:
            await self.page.ticket_changed(ticket_id)

    async def desk_item(self, message: dict[str, Any]) -> None:
        """A note, activity or draft of a followed ticket."""
        ticket_id = message["ticket"]
        if ticket_id not in self.followed:
            return
        if self.page is not None:
            await self.page.item(message["kind"], ticket_id, message["item"])
            return
        await self.send_json(
            {"type": message["kind"], "ticket": ticket_id, "item": message["item"]}
        )

    async def desk_presence(self, message: dict[str, Any]) -> None:
        if not self.first_time(message):
            return
        if self.page is not None and message["user"] != self.user.pk:
            self.page.queue_changed()  # the pools' "online" counts
            return
        await self.send_presence(message["user"], message["presence"])

    async def conversation_event(self, message: dict[str, Any]) -> None:
        """A customer-visible event of a followed ticket's conversation: relayed only when its
        own ticket is one this user may see now (checked on every event: the customer's next
        ticket may be another team's, and a followed ticket may have moved away)."""
        following = self._tickets_of(message)
        if not following:
            return
        event_ticket = message.get("ticket")
        if event_ticket is not None and not await self.can_access(event_ticket):
            for ticket_id in following:
                if ticket_id == event_ticket:  # the followed ticket itself moved away
                    await self.access_lost(ticket_id)
            return
        frame = message["frame"]
        for ticket_id in following:
            if self.page is None:
                await self.send_json({"type": "conversation", "ticket": ticket_id, "frame": frame})
            elif frame.get("type") == "message" and isinstance(frame.get("id"), int):
                await self.page.message(ticket_id, frame["id"])
            elif frame.get("type") == "status":
                await self.page.ticket_changed(ticket_id)

    async def conversation_typing(self, message: dict[str, Any]) -> None:
        if message["sender"] != Message.Sender.CUSTOMER:
            return
        for ticket_id in self._tickets_of(message):
            if self.page is not None:
                await self.page.typing(ticket_id)
            else:
                await self.send_json({"type": "typing", "ticket": ticket_id, "sender": "customer"})

    def _tickets_of(self, message: dict[str, Any]) -> list[int]:
        """The followed tickets a conversation-group message belongs to."""
        wanted = uuid.UUID(str(message["conversation"]))
        return [ticket_id for ticket_id, conv in self.followed.items() if conv == wanted]

    # --- following tickets ----------------------------------------------------------------

    async def access_lost(self, ticket_id: int) -> None:
        """A followed ticket moved out of the user's pools: stop following it, and say so."""
        await self.unfollow(ticket_id)
        if self.page is not None:
            await self.page.access_lost(ticket_id)
        else:
            await self.send_json(
                {"type": "unsubscribed", "ticket": ticket_id, "reason": "access_lost"}
            )

    async def can_access(self, ticket_id: int) -> bool:
        try:
            await database_sync_to_async(pool_selectors.ticket_get_visible)(
                user=self.user, ticket_id=ticket_id
            )
        except NotFound:
            return False
        return True

    async def follow(self, ticket_id: int, conversation_id: uuid.UUID) -> None:
        self.followed[ticket_id] = conversation_id
        await self.join(desk_ticket_group(ticket_id))
        await self.join(chat_services.conversation_group(conversation_id))

    async def unfollow(self, ticket_id: int) -> None:
        conversation_id = self.followed.pop(ticket_id, None)
        await self.leave(desk_ticket_group(ticket_id))
        if conversation_id is not None and conversation_id not in self.followed.values():
            await self.leave(chat_services.conversation_group(conversation_id))

    async def join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.joined.add(group)

    async def leave(self, group: str) -> None:
        if group in self.joined:
            self.joined.discard(group)
            await self.group_leave(group)

    async def send_error(self, code: str, message: str, **extra: Any) -> None:
        if self.page is not None:
            if code != "rate_limited":  # typing over its limit is not worth an alarm
                await self.page.error(code, message)
            return
        extra = {key: value for key, value in extra.items() if value is not None}
        await self.send_json({"type": "error", "code": code, "message": message, **extra})

    async def send_unavailable(self, error: ServiceUnavailable, **extra: Any) -> None:
        if self.page is not None:
            await self.page.error(error.code, error.message)
            return
        await super().send_unavailable(error, **extra)

    async def send_presence(self, user_id: int, presence: str) -> None:
        if self.page is not None:
            await self.page.presence(presence)
        else:
            await self.send_json({"type": "presence", "user": user_id, "presence": presence})

    async def send_html(self, html: str) -> None:
        if html.strip():
            await self.send(text_data=html)

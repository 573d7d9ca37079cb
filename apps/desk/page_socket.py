"""What the desk socket sends to the desk page (`/ws/desk/?format=html`): rendered pieces.

The consumer decides, per event and per user, whether an event may reach this socket (the same
checks as for JSON frames); this class turns what may into HTML from the database, read as the
user may see it now, and sends it for htmx's WebSocket extension to swap in (out of band, by
id). It holds what the page shows (its view) and what of the open ticket it has sent, so that
an item is appended once however many ways it arrives.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async

from apps.core.outages import DATABASE_ERRORS, outage_log
from apps.desk import partials

logger = logging.getLogger(__name__)

# Bursts of queue events (a routed ticket is opened, queued and assigned within milliseconds)
# become one render of the queue.
QUEUE_REFRESH_SECONDS = 0.15


class DeskPageRelay:
    """The rendered side of one desk page's socket."""

    def __init__(self, *, user: Any, send: Callable[[str], Awaitable[None]]) -> None:
        self.user = user
        self.send = send
        self.view = partials.DeskView()
        self.shown: dict[str, set[int]] = {"message": set(), "note": set(), "activity": set()}
        self.lost: set[int] = set()  # tickets this page was told it lost
        self._refresh: asyncio.Task[None] | None = None

    def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()

    # --- whole views ---------------------------------------------------------------------

    async def show(self, view: partials.DeskView, *, visible: bool) -> None:
        """Render everything the page shows for `view` (it navigated, or reconnected and may
        have missed events): the queue with its tabs and the open ticket's every piece."""
        self.view = view
        html = await database_sync_to_async(self._render_view)(visible)
        await self.send(html)

    def _render_view(self, visible: bool) -> str:
        parts = [partials.queue_render(user=self.user, view=self.view)]
        ticket_id = self.view.ticket
        if ticket_id is not None:
            panel = partials.ticket_panel(user=self.user, ticket_id=ticket_id) if visible else None
            parts.append(self._ticket(ticket_id, panel))
        return "".join(parts)

    def _ticket(self, ticket_id: int, panel: partials.TicketPanel | None) -> str:
        full = False
        if panel is None:
            self.lost.add(ticket_id)
        else:
            full = ticket_id in self.lost  # the page shows the notice: the whole pane again
            self.lost.discard(ticket_id)
            self.shown = {
                "message": {message["id"] for message in panel.messages},
                "note": {note["id"] for note in panel.notes},
                "activity": {item["id"] for item in panel.activities},
            }
        return partials.ticket_render(view=self.view, panel=panel, ticket_id=ticket_id, full=full)

    async def access_lost(self, ticket_id: int) -> None:
        """The open ticket moved out of the user's pools: the page says so and shows none of it."""
        if ticket_id == self.view.ticket:
            html = await database_sync_to_async(self._ticket)(ticket_id, None)
            await self.send(html)
        self.queue_changed()

    # --- the queue -------------------------------------------------------------------------

    def queue_changed(self) -> None:
        """A ticket of the user's queues or a pool mate's presence changed: render the queue
        once the burst is over."""
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.get_running_loop().create_task(self._queue_refresh())

    async def _queue_refresh(self) -> None:
        await asyncio.sleep(QUEUE_REFRESH_SECONDS)
        try:
            html = await database_sync_to_async(partials.queue_render)(
                user=self.user, view=self.view
            )
        except DATABASE_ERRORS as exc:
            outage_log(exc, where="the desk queue refresh")  # the next event renders it again
            return
        await self.send(html)

    async def ticket_changed(self, ticket_id: int) -> None:
        """The open ticket's status, pool or assignee changed: its head and trail again."""
        self.queue_changed()
        if ticket_id != self.view.ticket:
            return
        html = await database_sync_to_async(self._render_head)(ticket_id)
        await self.send(html)

    def _render_head(self, ticket_id: int) -> str:
        panel = partials.ticket_panel(user=self.user, ticket_id=ticket_id)
        if panel is None:
            return self._ticket(ticket_id, None)
        return partials.ticket_head_render(panel=panel)

    # --- items of the open ticket ------------------------------------------------------------

    async def message(self, ticket_id: int, message_id: int) -> None:
        if ticket_id != self.view.ticket or message_id in self.shown["message"]:
            return
        self.shown["message"].add(message_id)
        html = await database_sync_to_async(partials.message_render)(
            user=self.user, ticket_id=ticket_id, message_id=message_id
        )
        await self.send(html)

    async def item(self, kind: str, ticket_id: int, item: dict[str, Any]) -> None:
        """A note, activity, draft or gathered context of a followed ticket."""
        if ticket_id != self.view.ticket:
            return
        item_id = item.get("id")
        item_id = item_id if isinstance(item_id, int) else 0
        if kind in ("note", "activity"):
            if item_id in self.shown[kind]:
                return
            self.shown[kind].add(item_id)
        render = {
            "note": lambda: partials.note_render(ticket_id=ticket_id, note_id=item_id),
            "activity": lambda: partials.activity_render(ticket_id=ticket_id, activity_id=item_id),
            "draft": lambda: partials.draft_render(ticket_id=ticket_id, draft_id=item_id),
            "context": lambda: self._render_context(ticket_id),
        }.get(kind)
        if render is None:
            return
        html = await database_sync_to_async(render)()
        await self.send(html)

    def _render_context(self, ticket_id: int) -> str:
        panel = partials.ticket_panel(user=self.user, ticket_id=ticket_id)
        return partials.context_render(panel=panel, view=self.view) if panel else ""

    async def typing(self, ticket_id: int) -> None:
        if ticket_id == self.view.ticket:
            await self.send(partials.typing_render(ticket_id=ticket_id))

    # --- the user's own -------------------------------------------------------------------

    async def presence(self, presence: str) -> None:
        await self.send(partials.presence_render(presence=presence))

    async def error(self, code: str, message: str) -> None:
        await self.send(partials.error_render(code=code, message=message))

"""Group commit for sockets: what many sockets send while the database thread is busy is
written together, in one trip to that thread and one transaction.

A server process has one database thread for all its sockets (Channels runs every
`database_sync_to_async` call there, in turn). One trip and one transaction per frame made the
trips, the transaction starts and the commits the cost of a chat message under load; a batch
pays them once for every frame that arrived meanwhile. Nothing waits for a batch to fill: an
idle server writes a lone frame at once, a busy one writes what queued behind the last batch.
"""

import asyncio
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from channels.db import database_sync_to_async

Item = TypeVar("Item")
Result = TypeVar("Result")

# Each result is the item's own, or the exception that refused that item alone.
WriteMany = Callable[[list[Item]], Sequence[Result | Exception]]


@dataclass
class _Pending(Generic[Item, Result]):
    items: list[tuple[Item, "asyncio.Future[Result]"]] = field(default_factory=list)
    writer: "asyncio.Task[None] | None" = None


class Batcher(Generic[Item, Result]):
    """Writes the items coroutines `submit`, in the order they came, `max_items` at most at a
    time, with `write_many` in the database thread.

    `write_many` returns one result per item, an exception for an item it refused alone; when
    it raises (the database is unavailable), every item of the batch gets that error, nothing
    of the batch having been written.
    """

    def __init__(self, write_many: WriteMany[Item, Result], *, max_items: int = 200) -> None:
        self.write_many = write_many
        self.max_items = max_items
        # One queue per event loop (a server has one; tests run one loop per test).
        self._pending: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, _Pending[Item, Result]
        ] = weakref.WeakKeyDictionary()

    async def submit(self, item: Item) -> Result:
        """Write `item` with whatever else is waiting; return its result or raise its error."""
        loop = asyncio.get_running_loop()
        pending = self._pending.setdefault(loop, _Pending())
        future: asyncio.Future[Result] = loop.create_future()
        pending.items.append((item, future))
        if pending.writer is None or pending.writer.done():
            pending.writer = loop.create_task(self._write_while_pending(pending))
        return await future

    async def _write_while_pending(self, pending: _Pending[Item, Result]) -> None:
        while pending.items:
            batch = pending.items[: self.max_items]
            del pending.items[: self.max_items]
            try:
                results = await database_sync_to_async(self.write_many)(
                    [item for item, _future in batch]
                )
            except Exception as exc:
                for _item, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_item, future), result in zip(batch, results, strict=True):
                if future.done():  # its socket went away meanwhile; the item is written
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

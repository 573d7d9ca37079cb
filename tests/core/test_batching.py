"""Group commit: what arrives while a batch is written goes in the next one, in order; an item's
own error reaches only its submitter; a failed batch fails each of its items."""

import asyncio
import threading

import pytest

from apps.core.batching import Batcher

# The batcher writes through the database thread, which closes stale connections around each
# batch: database access must be allowed even though these writers do not query.
pytestmark = pytest.mark.django_db


class Refused(Exception):
    pass


def test_items_that_arrive_while_a_batch_is_written_go_together_in_the_next():
    calls: list[list[int]] = []
    first_started = threading.Event()
    release_first = threading.Event()

    def write_many(items: list[int]) -> list[int | Exception]:
        calls.append(items)
        if len(calls) == 1:
            first_started.set()
            release_first.wait(5)
        return [Refused(item) if item == 3 else item * 10 for item in items]

    batcher: Batcher[int, int] = Batcher(write_many)

    async def scenario():
        first = asyncio.create_task(batcher.submit(1))
        await asyncio.to_thread(first_started.wait, 5)
        rest = [asyncio.create_task(batcher.submit(n)) for n in (2, 3, 4)]
        await asyncio.sleep(0.05)  # all three queued behind the batch being written
        release_first.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    results = asyncio.run(scenario())
    assert calls == [[1], [2, 3, 4]]
    assert [results[0], results[1], results[3]] == [10, 20, 40]
    assert isinstance(results[2], Refused)  # refused alone: 2 and 4 were written


def test_a_batch_that_fails_fails_each_of_its_items_and_the_next_batch_still_runs():
    calls = 0

    def write_many(items: list[str]) -> list[str | Exception]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database unavailable")
        return [item.upper() for item in items]

    batcher: Batcher[str, str] = Batcher(write_many)

    async def scenario():
        failed = await asyncio.gather(
            batcher.submit("a"), batcher.submit("b"), return_exceptions=True
        )
        return failed, await batcher.submit("c")

    failed, later = asyncio.run(scenario())
    assert [type(result) for result in failed] == [ConnectionError, ConnectionError]
    assert later == "C"


def test_a_batch_holds_at_most_max_items():
    sizes: list[int] = []

    def write_many(items: list[int]) -> list[int | Exception]:
        sizes.append(len(items))
        return list(items)

    batcher: Batcher[int, int] = Batcher(write_many, max_items=4)

    async def scenario():
        return await asyncio.gather(*(batcher.submit(n) for n in range(10)))

    assert asyncio.run(scenario()) == list(range(10))
    assert sum(sizes) == 10
    assert max(sizes) <= 4


def test_a_lone_item_is_written_at_once():
    batcher: Batcher[int, int] = Batcher(lambda items: list(items))

    async def scenario():
        return await asyncio.wait_for(batcher.submit(7), timeout=1)

    assert asyncio.run(scenario()) == 7

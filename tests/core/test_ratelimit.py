"""Rate limits on the memory storage: moving windows that refuse the hit over the rate and
allow it again once the window has moved, with expired entries swept at most once a second in
the counting thread (limits' own storage started a thread 10 ms after nearly every hit)."""

import threading
import time

import pytest

from apps.core.errors import RateLimited
from apps.core.ratelimit import _limiter, _Memory, rate_limit_hit


@pytest.fixture
def memory(settings):
    uri = "memory://?test=ratelimit"  # a storage of its own, not the one other tests count in
    settings.RATE_LIMIT_STORAGE_URI = uri
    storage = _limiter(uri).storage
    storage.reset()
    yield storage
    storage.reset()


def _timers() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if isinstance(thread, threading.Timer)}


def test_the_setting_s_memory_storage_is_ours(memory, settings):
    assert isinstance(memory, _Memory)
    assert _limiter(settings.RATE_LIMIT_STORAGE_URI).storage is memory  # what rate_limit_hit uses


def test_a_hit_over_the_rate_is_refused_and_allowed_once_the_window_moves(memory):
    rate_limit_hit(scope="test", key="a", rate="2/second")
    rate_limit_hit(scope="test", key="a", rate="2/second")
    with pytest.raises(RateLimited) as refused:
        rate_limit_hit(scope="test", key="a", rate="2/second")
    assert refused.value.retry_after == 1
    rate_limit_hit(scope="test", key="b", rate="2/second")  # another key counts apart
    time.sleep(1.1)
    rate_limit_hit(scope="test", key="a", rate="2/second")


def test_hits_start_no_thread(memory):
    time.sleep(0.05)  # the storage's first timer (started by limits' constructor) has run
    before = _timers()
    for n in range(50):
        rate_limit_hit(scope="test", key=str(n), rate="100/minute")
    assert _timers() - before == set()  # limits' own storage leaves its last timer running


def test_expired_entries_are_swept_by_a_later_hit_at_most_once_a_second(memory):
    def entries() -> int:
        return sum(len(events) for events in memory.events.values())

    memory._expired_at = time.monotonic()  # swept just now
    rate_limit_hit(scope="test", key="old", rate="1/second")
    rate_limit_hit(scope="test", key="new", rate="1/second")
    time.sleep(1.1)
    assert entries() == 2  # expired, but no sweep within the second
    rate_limit_hit(scope="test", key="newer", rate="1/second")  # sweeps the two expired
    assert entries() == 1

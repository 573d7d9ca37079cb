"""Rate limits over the `limits` library (moving windows; memory or Redis storage).

The storage comes from RATE_LIMIT_STORAGE_URI so several ASGI processes share one budget when
scaled out on Redis. While that storage is out of reach (Redis restarting) limits fail open,
with a warning: a customer's message matters more than a rate limit for a few seconds, and the
counters come back with Redis.
"""

import math
import time
from functools import cache

from django.conf import settings
from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from apps.core.errors import RateLimited
from apps.core.outages import outage_log


class _Memory(MemoryStorage):
    """limits' memory storage (one process, the embedded profile), dropping expired entries at
    most once a second, in the thread that counts a hit.

    limits schedules that sweep on every hit, in a new thread 10 ms later unless the last one
    is still running: under a chat burst that was a thread started for almost every message and
    a walk over every key of every limit each time, all of it holding the interpreter the
    sockets share. In a moving window (the only strategy used here) an entry past its window
    never counts, whenever it is dropped: dropping it later changes no decision, and the sweep
    is left only to bound memory.
    """

    EXPIRE_EVERY_SECONDS = 1.0
    _expired_at = 0.0

    # MemoryStorage calls its private __schedule_expiry on every hit; its mangled name is the
    # only way in (limits 5.8, pinned; tests/core/test_ratelimit.py fails if that changes).
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now - self._expired_at >= self.EXPIRE_EVERY_SECONDS:
            self._expired_at = now
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]  # mangled


@cache
def _limiter(storage_uri: str) -> MovingWindowRateLimiter:
    # wrap_exceptions: every storage failure is a StorageError, whatever the backend.
    if storage_uri.startswith("memory://"):
        return MovingWindowRateLimiter(_Memory(storage_uri, wrap_exceptions=True))
    storage = storage_from_string(storage_uri, wrap_exceptions=True)
    assert isinstance(storage, Storage), "use a synchronous storage URI"
    return MovingWindowRateLimiter(storage)


@cache
def _item(rate: str) -> RateLimitItem:
    return parse(rate)


def rate_limit_hit(*, scope: str, key: str, rate: str) -> None:
    """Count one hit for `key` in `scope`; raise RateLimited when over `rate` (e.g. "20/minute")."""
    limiter = _limiter(settings.RATE_LIMIT_STORAGE_URI)
    item = _item(rate)
    try:
        if limiter.hit(item, scope, key):
            return
        reset_at, _remaining = limiter.get_window_stats(item, scope, key)
    except StorageError as exc:
        outage_log(exc.storage_error, where=f"rate limit {scope} (allowed)")
        return
    retry_after = max(1, math.ceil(reset_at - time.time()))
    raise RateLimited(retry_after=retry_after)


def rate_limit_reset() -> None:
    """Forget every counter (tests and operators)."""
    _limiter(settings.RATE_LIMIT_STORAGE_URI).storage.reset()

"""Rate limits over the `limits` library (moving windows; memory or Redis storage).

The storage comes from RATE_LIMIT_STORAGE_URI so several ASGI processes share one budget when
scaled out on Redis.
"""

import math
import time
from functools import cache

from django.conf import settings
from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from apps.core.errors import RateLimited


@cache
def _limiter(storage_uri: str) -> MovingWindowRateLimiter:
    storage = storage_from_string(storage_uri)
    assert isinstance(storage, Storage), "use a synchronous storage URI"
    return MovingWindowRateLimiter(storage)


@cache
def _item(rate: str) -> RateLimitItem:
    return parse(rate)


def rate_limit_hit(*, scope: str, key: str, rate: str) -> None:
    """Count one hit for `key` in `scope`; raise RateLimited when over `rate` (e.g. "20/minute")."""
    limiter = _limiter(settings.RATE_LIMIT_STORAGE_URI)
    item = _item(rate)
    if limiter.hit(item, scope, key):
        return
    reset_at, _remaining = limiter.get_window_stats(item, scope, key)
    retry_after = max(1, math.ceil(reset_at - time.time()))
    raise RateLimited(retry_after=retry_after)


def rate_limit_reset() -> None:
    """Forget every counter (tests and operators)."""
    _limiter(settings.RATE_LIMIT_STORAGE_URI).storage.reset()

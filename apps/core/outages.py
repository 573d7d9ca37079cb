"""What an outage of a dependency looks like, and how an edge answers it.

PostgreSQL restarting, SQLite held by another writer past its busy timeout, Redis restarting:
each surfaces as one of `DEPENDENCY_ERRORS`. The transaction that met it rolled back, so
nothing is half-written; edges answer `ServiceUnavailable` (HTTP 503, or an `unavailable`
error frame) with a `retry_after`, and the client sends the same request again. Each outage
is one warning log line, without a traceback: it is expected, and operators read the rate.
"""

import logging

import redis.exceptions
from django.db import InterfaceError, OperationalError

from apps.core.errors import ServiceUnavailable

logger = logging.getLogger("apps.outages")

# OperationalError: connection refused or lost, "database is locked" (SQLite busy timeout),
# the server shutting down. InterfaceError: a connection that was closed under us.
DATABASE_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
REDIS_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
DEPENDENCY_ERRORS: tuple[type[Exception], ...] = DATABASE_ERRORS + REDIS_ERRORS

RETRY_AFTER_SECONDS = 5


def outage_log(exc: BaseException, *, where: str) -> None:
    """One line naming the dependency error and where it was met."""
    logger.warning(
        "dependency unavailable in %s: %s: %s", where, type(exc).__name__, str(exc)[:200]
    )


def outage_error(exc: BaseException, *, where: str) -> ServiceUnavailable:
    """Log the outage and return what to tell the client."""
    outage_log(exc, where=where)
    return ServiceUnavailable(retry_after=RETRY_AFTER_SECONDS)

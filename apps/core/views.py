"""Operational endpoints: `/healthz` (unauthenticated, no secrets) and `/metrics` (Prometheus);
the answer to a URL nothing serves."""

import asyncio
import hmac
import ipaddress
import logging
import time
import uuid
from collections.abc import Callable

from asgiref.sync import async_to_sync
from celery import current_app
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from django.views.defaults import page_not_found

from apps.core.metrics import metrics_exposition

logger = logging.getLogger(__name__)

# Each check that talks to a server gives up after this long: a health check must answer.
CHECK_TIMEOUT_SECONDS = 2


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _cache() -> None:
    key, value = f"healthz:{uuid.uuid4().hex}", uuid.uuid4().hex
    cache.set(key, value, timeout=10)
    found = cache.get(key)
    cache.delete(key)
    if found != value:
        raise RuntimeError("the cache did not return what was stored")


def _channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer is configured")

    async def round_trip() -> None:
        # A plain channel, not a process-local one (`new_channel`): its receive reads its own
        # key directly instead of waiting for the process's shared receive loop, which the
        # sockets' receives hold.
        channel = f"healthz.{uuid.uuid4().hex}"
        await layer.send(channel, {"type": "healthz.ping"})
        message = await layer.receive(channel)
        if message.get("type") != "healthz.ping":
            raise RuntimeError("the channel layer returned another message")

    async def bounded() -> None:
        await asyncio.wait_for(round_trip(), CHECK_TIMEOUT_SECONDS)

    async_to_sync(bounded)()


def _broker() -> None:
    # The project's Celery app (supportdesk/celery.py, made current as Django starts).
    with current_app.connection_for_write(
        settings.CELERY_BROKER_URL, connect_timeout=CHECK_TIMEOUT_SECONDS
    ) as conn:
        conn.ensure_connection(max_retries=0, timeout=CHECK_TIMEOUT_SECONDS)


def health_checks() -> dict[str, Callable[[], None]]:
    """The checks `/healthz` runs; all are required. The broker only when one is configured."""
    checks: dict[str, Callable[[], None]] = {
        "database": _database,
        "cache": _cache,
        "channel_layer": _channel_layer,
    }
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        checks["broker"] = _broker
    return checks


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and reachability of the database, cache, channel layer and Celery broker.

    200 when every check passes, else 503. Each check reports its status and time; a failure
    names only the exception's class (messages can carry hosts or user names), the full
    error goes to the log.
    """
    results: dict[str, dict[str, object]] = {}
    for name, check in health_checks().items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # any failure of a dependency is a failed check
            logger.warning("health check %s failed: %r", name, exc)
            results[name] = {"status": "error", "error": type(exc).__name__}
        else:
            results[name] = {"status": "ok"}
        results[name]["ms"] = round((time.perf_counter() - started) * 1000, 2)
    healthy = all(result["status"] == "ok" for result in results.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", "checks": results},
        status=200 if healthy else 503,
    )


def metrics_allowed(request: HttpRequest) -> bool:
    """A scraper from an allowed network (METRICS_ALLOWED_NETWORKS), or with METRICS_TOKEN."""
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode()):
            return True
    try:
        client = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if client.version == 6 and client.ipv4_mapped is not None:
        client = client.ipv4_mapped  # a dual-stack socket reports IPv4 clients this way
    return any(
        client in ipaddress.ip_network(network, strict=False)
        for network in settings.METRICS_ALLOWED_NETWORKS
    )


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics: routing counters and histograms, and queue sizes from the database."""
    if not metrics_allowed(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    body, content_type = metrics_exposition(accept=request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 for a URL that no view serves (`handler404`): under /api/ in the API's error shape,
    as the schema declares (a malformed id in a path never matched a view); elsewhere Django's
    page."""
    if request.path.startswith("/api/"):
        body = {"error": {"code": "not_found", "message": "Not found."}}
        return JsonResponse(body, status=404)
    return page_not_found(request, exception)

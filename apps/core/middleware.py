"""HTTP middleware: a request id for every request, in the logs and in the response; 503, not
500, when a dependency is out of reach."""

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse

from apps.core.clients import request_client_address
from apps.core.logging import log_request
from apps.core.outages import DEPENDENCY_ERRORS, outage_error

REQUEST_ID_HEADER = "X-Request-ID"
# A proxy's id is kept only when it is short and plain: it goes into every log line.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_from(value: str | None) -> str:
    """The caller's request id when it is safe to log, else a new one."""
    if value and _SAFE_ID.match(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Reads X-Request-ID (or makes one), binds it for the logs, and returns it. Synchronous,
    as the whole chain is (see DependencyOutageMiddleware)."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        with log_request(request_id=request_id, client=request_client_address(request)):
            response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


class DependencyOutageMiddleware:
    """A page or API view that meets a dependency outage (database, Redis) answers 503 with
    Retry-After instead of a 500: JSON in the API's error shape under /api/, a short page
    elsewhere. DRF views answer it themselves (apps.core.api.exception_handler); this covers
    the admin, the desk and report pages, and anything outside DRF.

    Synchronous only, and last in MIDDLEWARE on purpose: Django then runs the whole chain
    (every middleware above it can run either way) and the view in one thread, entering it
    once per request. WhiteNoise runs only synchronously, so with this one asynchronous the
    middleware below WhiteNoise ran in the event loop, each stepping into the request's thread
    and back for its own hooks: 16 crossings per request, about a third of an API request's CPU
    (docs/benchmarks.md, "Issue 14 at d9ec012").
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DEPENDENCY_ERRORS):
            return None
        error = outage_error(exception, where=request.path)
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse(
                {"error": {"code": error.code, "message": error.message, **error.extra}},
                status=error.http_status,
            )
        else:
            response = HttpResponse(
                f"<!doctype html><title>Briefly unavailable</title><p>{error.message}</p>",
                status=error.http_status,
            )
        response["Retry-After"] = str(error.retry_after)
        return response

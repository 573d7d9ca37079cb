"""HTTP middleware: a request id for every request, in the logs and in the response; 503, not
500, when a dependency is out of reach."""

import re
import uuid
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
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
    """Reads X-Request-ID (or makes one), binds it for the logs, and returns it."""

    sync_capable = True
    async_capable = True

    def __init__(
        self,
        get_response: Callable[[HttpRequest], HttpResponseBase]
        | Callable[[HttpRequest], Awaitable[HttpResponseBase]],
    ) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self.__acall__(request)
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        with log_request(request_id=request_id, client=request_client_address(request)):
            response = self.get_response(request)
            assert isinstance(response, HttpResponseBase)
        response[REQUEST_ID_HEADER] = request_id
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        with log_request(request_id=request_id, client=request_client_address(request)):
            response: HttpResponseBase = await self.get_response(request)  # type: ignore[misc]
        response[REQUEST_ID_HEADER] = request_id
        return response


class DependencyOutageMiddleware:
    """A page or API view that meets a dependency outage (database, Redis) answers 503 with
    Retry-After instead of a 500: JSON in the API's error shape under /api/, a short page
    elsewhere. DRF views answer it themselves (apps.core.api.exception_handler); this covers
    the admin, the desk and report pages, and anything outside DRF."""

    sync_capable = True
    async_capable = True

    def __init__(
        self,
        get_response: Callable[[HttpRequest], HttpResponseBase]
        | Callable[[HttpRequest], Awaitable[HttpResponseBase]],
    ) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
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

"""DRF glue shared by every API: one error shape for every failure."""

from typing import Any, Literal

from django.core.exceptions import PermissionDenied
from django.http import Http404
from drf_spectacular.openapi import AutoSchema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.errors import ApplicationError
from apps.core.outages import DEPENDENCY_ERRORS, outage_error


def _error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Render ApplicationError and DRF errors as `{"error": {"code", "message", ...}}`; a
    dependency outage (database, Redis) as 503 `unavailable` with Retry-After."""
    if isinstance(exc, DEPENDENCY_ERRORS):
        exc = outage_error(exc, where=type(context.get("view")).__name__)
    if isinstance(exc, ApplicationError):
        headers = {}
        if "retry_after" in exc.extra:
            headers["Retry-After"] = str(exc.extra["retry_after"])
        return Response(
            _error_body(exc.code, exc.message, **exc.extra), exc.http_status, headers=headers
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    assert isinstance(exc, exceptions.APIException)
    if isinstance(exc, exceptions.ValidationError):
        response.data = _error_body("invalid", "The input is not valid.", fields=exc.detail)
    else:
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "error"
        response.data = _error_body(str(code), str(exc.detail))
    if response.status_code == status.HTTP_401_UNAUTHORIZED and "WWW-Authenticate" not in response:
        response["WWW-Authenticate"] = "Bearer"
    return response


class SchemaWithNestedNames(AutoSchema):
    """Names nested `InputSerializer`/`OutputSerializer` classes after their view
    (`TicketRerouteApi.InputSerializer` → `TicketRerouteInput`), so that the many views using
    the same nested names do not collide in the OpenAPI components."""

    def get_serializer_name(
        self, serializer: Any, direction: Literal["request", "response"]
    ) -> str:
        owner, _, name = type(serializer).__qualname__.rpartition(".")
        if owner and name in ("InputSerializer", "OutputSerializer"):
            return owner.removesuffix("Api") + name
        return str(super().get_serializer_name(serializer, direction))

"""DRF glue shared by every API: one error shape for every failure, the page every list
answers, and an OpenAPI schema that documents both."""

import math
from typing import Any, Literal, cast

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.pagination import BasePagination
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.errors import ApplicationError, RateLimited
from apps.core.outages import DEPENDENCY_ERRORS, outage_error

# The largest id a row can have (BigAutoField): larger ones are refused as input, since the
# database cannot even compare them.
ID_MAX = 2**63 - 1


def _error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Render ApplicationError and DRF errors as `{"error": {"code", "message", ...}}`; a
    dependency outage (database, Redis) as 503 `unavailable` with Retry-After."""
    if isinstance(exc, DEPENDENCY_ERRORS):
        exc = outage_error(exc, where=type(context.get("view")).__name__)
    if isinstance(exc, exceptions.Throttled):
        # A throttle is a rate limit like the chat's: the same code, with `retry_after`.
        exc = RateLimited("Too many requests. Please wait a moment.", retry_after=_wait(exc))
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
        fields = exc.detail
        if not isinstance(fields, dict):  # raised without a field: name it as DRF does
            fields = {api_settings.NON_FIELD_ERRORS_KEY: fields}
        response.data = _error_body("invalid", "The input is not valid.", fields=fields)
    else:
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "error"
        response.data = _error_body(str(code), str(exc.detail))
    if response.status_code == status.HTTP_401_UNAUTHORIZED and "WWW-Authenticate" not in response:
        response["WWW-Authenticate"] = "Bearer"
    return response


def _wait(exc: exceptions.Throttled) -> int:
    wait: float | None = exc.wait  # type: ignore[attr-defined]  # set by Throttled, not in stubs
    return max(1, math.ceil(wait or 1))


def query_param(request: Request, name: str, field: serializers.Field[Any, Any, Any, Any]) -> Any:
    """One query parameter checked by a serializer field (None when absent or empty); a bad
    value is refused as `invalid` with the parameter named in `fields`."""
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    try:
        return field.run_validation(value)
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({name: exc.detail}) from exc


# --- Errors in the schema ----------------------------------------------------------------


class ErrorDetailSerializer(serializers.Serializer[dict[str, Any]]):
    code = serializers.CharField(help_text="What went wrong, for programs: see the docs.")
    message = serializers.CharField(help_text="What went wrong, for people.")
    fields = serializers.DictField(  # type: ignore[assignment]  # the key is named "fields"
        required=False, help_text="`invalid`: what is wrong with each input, by its name."
    )
    retry_after = serializers.IntegerField(
        required=False, help_text="`rate_limited`, `unavailable`: seconds to wait."
    )
    limit = serializers.IntegerField(
        required=False, help_text="`file_too_large`, `request_too_large`: bytes."
    )


class ErrorSerializer(serializers.Serializer[dict[str, Any]]):
    """Every refusal and failure of the API: `{"error": {"code", "message", ...}}`."""

    error = ErrorDetailSerializer()


ERROR_DESCRIPTIONS = {
    400: "`invalid` (`fields` names each input that is wrong), or a code of its own such as "
    "`empty_text`.",
    401: "`not_authenticated` or `authentication_failed`: credentials missing or not valid.",
    403: "`permission_denied`: not allowed for this user.",
    404: "`not_found`: no such object, or one this caller may not see (or a `format` that "
    "the endpoint does not offer).",
    409: "`conflict` (or a code of its own): the object's state does not allow it now.",
    413: "`file_too_large` (an upload over `ATTACHMENT_MAX_BYTES`) or `request_too_large` (any "
    "other body over `DATA_UPLOAD_MAX_MEMORY_SIZE`), with `limit` in bytes; refused before the "
    "body is read.",
    415: "`unsupported_file_type` (PNG, JPEG, GIF, WebP and PDF only), or "
    "`unsupported_media_type` for a body the endpoint does not read.",
    429: "`rate_limited`: too many requests; `retry_after` (and the Retry-After header) says "
    "how many seconds to wait.",
    503: "`unavailable`: a dependency was briefly out of reach and nothing was stored; send the "
    "same request again after `retry_after` seconds.",
}


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """Error answers for `@extend_schema(responses=...)`, for what only the view knows (409,
    413, ...); those that follow from the view's shape are added by `SchemaWithNestedNames`."""
    return {
        code: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[code])
        for code in statuses
    }


class SchemaWithNestedNames(AutoSchema):
    """The project's OpenAPI schema.

    Names nested `InputSerializer`/`OutputSerializer` classes after their view
    (`TicketRerouteApi.InputSerializer` → `TicketRerouteInput`), so that the many views using
    the same nested names do not collide in the OpenAPI components; and documents the error
    answers every operation can give, with the one error shape (the exception handler above).
    """

    def get_serializer_name(
        self, serializer: Any, direction: Literal["request", "response"]
    ) -> str:
        owner, _, name = type(serializer).__qualname__.rpartition(".")
        if owner and name in ("InputSerializer", "OutputSerializer"):
            return owner.removesuffix("Api") + name
        return str(super().get_serializer_name(serializer, direction))

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation: dict[str, Any] | None = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation["responses"]
        for code in self._error_statuses(operation):
            responses.setdefault(str(code), {"description": ERROR_DESCRIPTIONS[code]})
        for code, response in responses.items():
            # Every refusal has the error shape, also those a view describes only in words.
            if code.startswith(("4", "5")) and "content" not in response:
                body = self._get_response_for_code(ErrorSerializer, code)  # type: ignore[no-untyped-call]
                response["content"] = body["content"]
                response["description"] = response.get("description") or body["description"]
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _error_statuses(self, operation: dict[str, Any]) -> list[int]:
        """What the view's shape says it may answer: bad input, credentials, permission,
        unknown objects, throttles, and an outage (any endpoint)."""
        view = self.view
        authenticators = list(view.authentication_classes)
        permissions = list(view.permission_classes)
        found = [503]
        reads_input = "requestBody" in operation or any(
            parameter["in"] == "query" for parameter in operation.get("parameters", [])
        )
        if reads_input:
            found.append(400)
        if "requestBody" in operation:  # apps/core/bodylimit.py
            found.append(413)
        if authenticators:  # a credential that is sent is checked, and may be refused
            found.append(401)
        signs_in_users = any(
            issubclass(cls, (TokenAuthentication, SessionAuthentication)) for cls in authenticators
        )
        if signs_in_users and any(cls is not AllowAny for cls in permissions):
            found.append(403)
        # An unknown object in the path; DRF also answers 404 to a `format` it cannot render.
        format_param = api_settings.URL_FORMAT_OVERRIDE
        if "{" in self.path or any(
            parameter["name"] == format_param for parameter in operation.get("parameters", [])
        ):
            found.append(404)
        if view.throttle_classes:
            found.append(429)
        return sorted(found)


# --- Pages ---------------------------------------------------------------------------------


class PaginatedApi(APIView):
    """A list endpoint answering a page, `{"count","next","previous","results"}`, of the
    project's pagination class (REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"]). drf-spectacular
    reads `pagination_class` to declare the page and its `limit`/`offset` parameters."""

    @property
    def pagination_class(self) -> type[BasePagination]:
        # Read when used: the setting names a class of this module.
        return cast(type[BasePagination], api_settings.DEFAULT_PAGINATION_CLASS)

    def page_response(
        self,
        request: Request,
        rows: QuerySet[Any],
        serializer_class: type[serializers.BaseSerializer[Any]],
    ) -> Response:
        """The page of `rows` that `limit`/`offset` ask for, serialised."""
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(rows, request, view=self)
        data = serializer_class(page, many=True).data
        return paginator.get_paginated_response(data)

"""Request bodies are bounded before they are read.

Django's ASGI handler reads a request's whole body into a temporary file before any
middleware or view runs, so a size check in a view comes after the bytes were received and
spooled. `RequestBodyLimit` wraps the Django application (supportdesk/asgi.py) and answers
413 in the API's error shape:

- at once, without reading the body, when Content-Length is over the limit;
- as soon as the bytes received pass it, when there is no Content-Length (chunked): Django
  is told the client went away and stops reading, and nothing of the request was handled.

A view declares its own limit with a `body_limit()` classmethod (the attachment uploads);
any other request may carry at most Django's DATA_UPLOAD_MAX_MEMORY_SIZE (None: no limit).
"""

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.urls import Resolver404, resolve

from apps.core.errors import ApplicationError

Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestTooLarge(ApplicationError):
    code = "request_too_large"
    http_status = 413
    default_message = "The request body is too large."

    def __init__(self, *, limit: int) -> None:
        super().__init__(f"Request bodies can be up to {limit:,} bytes.", extra={"limit": limit})


@dataclass(frozen=True)
class BodyLimit:
    """The most bytes a request body may have, and the error that refuses a larger one."""

    max_bytes: int
    error: ApplicationError


def body_limit_for(path: str) -> BodyLimit | None:
    """The limit of the view that serves `path`, else Django's for any request body."""
    try:
        view = resolve(path).func
    except Resolver404:
        view = None
    declared = getattr(getattr(view, "view_class", None), "body_limit", None)
    if callable(declared):
        limit: BodyLimit = declared()
        return limit
    default = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if default is None:
        return None
    return BodyLimit(max_bytes=default, error=RequestTooLarge(limit=default))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, error: ApplicationError) -> None:
    body = json.dumps(
        {"error": {"code": error.code, "message": error.message, **error.extra}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.http_status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is not read: the connection cannot be reused.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestBodyLimit:
    """ASGI middleware: refuse a request body over its limit before it is read or spooled."""

    def __init__(self, app: AsgiApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"].removeprefix(scope.get("root_path", "")) or "/"
        limit = body_limit_for(path)
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > limit.max_bytes:
            await _refuse(send, limit.error)
            return
        received = 0
        passed = False

        async def counted_receive() -> Message:
            nonlocal received, passed
            if passed:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
                    # Django stops reading and answers nothing (a client that went away).
                    passed = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, counted_receive, send)
        if passed:
            await _refuse(send, limit.error)

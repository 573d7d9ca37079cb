"""Logs that say which request and which ticket they belong to.

Two context variables carry the ids: `RequestIdMiddleware` sets the request id for each HTTP
request (X-Request-ID in and out), Celery's task signals set it for each task (the task id,
unless the task runs eagerly inside a request that has one), and `ticket_route` binds the
ticket id for its duration (`log_context`); WebSocket consumers give each frame an id of its
own (`FrameRequestIdMixin`). `ContextFilter`, attached to the handlers, copies
both onto every record, so the JSON formatter (LOG_FORMAT=json) and the plain one print them.
See docs/operations.md.
"""

import logging
import logging.config
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from celery.signals import setup_logging, task_postrun, task_prerun
from django.conf import settings

from apps.core.clients import scope_client_address

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
ticket_id_var: ContextVar[int | None] = ContextVar("ticket_id", default=None)
# The client's address as apps.core.clients sees it (the same one rate limits count).
client_var: ContextVar[str | None] = ContextVar("client", default=None)


class ContextFilter(logging.Filter):
    """Adds `request_id`, `ticket_id` and `client` (None when unknown) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.ticket_id = ticket_id_var.get()
        record.client = client_var.get()
        return True


@contextmanager
def log_request(*, request_id: str, client: str | None = None) -> Iterator[None]:
    """Mark the logs inside the block as of this request (a WebSocket frame, say) from
    `client`, about no ticket until one is bound."""
    tokens = request_id_var.set(request_id), ticket_id_var.set(None), client_var.set(client)
    try:
        yield
    finally:
        client_var.reset(tokens[2])
        ticket_id_var.reset(tokens[1])
        request_id_var.reset(tokens[0])


class FrameRequestIdMixin:
    """For WebSocket consumers: each frame received gets its own request id in the logs, as
    an HTTP request does (the chat and desk sockets live for hours; one id would say nothing)."""

    scope: dict[str, Any]

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        with log_request(request_id=uuid.uuid4().hex, client=scope_client_address(self.scope)):
            await super().websocket_receive(message)  # type: ignore[misc]


@contextmanager
def log_context(*, ticket_id: int) -> Iterator[None]:
    """Mark the logs inside the block as about this ticket; afterwards, what was there before
    (a thread or request that routes many tickets must not leave the last one on its logs)."""
    token = ticket_id_var.set(ticket_id)
    try:
        yield
    finally:
        ticket_id_var.reset(token)


@setup_logging.connect(weak=False)
def _celery_logging_setup(**_: Any) -> None:
    # With a receiver here Celery leaves the root logger alone: workers log like the web
    # processes (LOG_FORMAT, LOG_LEVEL, the context filter) instead of Celery's own format.
    logging.config.dictConfig(settings.LOGGING)


# Each task gets its own ids; the tokens put back what was there (an eager task inside an
# HTTP request returns to the request's ids). Keyed by task id: prerun and postrun pair up.
_task_tokens: dict[str, tuple[Token[str | None], Token[int | None]]] = {}


@task_prerun.connect(weak=False)
def _task_context_set(task_id: str, **_: Any) -> None:
    request_id = request_id_var.get() or task_id
    _task_tokens[task_id] = (request_id_var.set(request_id), ticket_id_var.set(None))


@task_postrun.connect(weak=False)
def _task_context_reset(task_id: str, **_: Any) -> None:
    tokens = _task_tokens.pop(task_id, None)
    if tokens is None:
        return
    request_token, ticket_token = tokens
    ticket_id_var.reset(ticket_token)
    request_id_var.reset(request_token)

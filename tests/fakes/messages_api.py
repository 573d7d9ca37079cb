"""An HTTP stand-in for the Anthropic Messages API, for tests that run the real `anthropic` SDK.

The server listens on 127.0.0.1 (a free port) in a background thread and speaks the wire format
of anthropic 2.14.0: `POST /v1/messages` (JSON or, with `"stream": true`, server-sent events),
`POST /v1/messages/count_tokens` and the Message Batches endpoints, whose results are served as
JSON Lines from the absolute `results_url` the batch object carries. Errors use the API's body
`{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}`, and every answer
carries a `request-id` header.

Point a client at it with `Anthropic(api_key=..., base_url=standin.url)` or `ANTHROPIC_BASE_URL`.
Replies to `POST /v1/messages` are scripted with `enqueue(...)` and consumed one per HTTP request,
so the SDK's own retries each take the next reply; once the queue is empty `default(body)`
answers. Nothing in the project is patched: the SDK sends real HTTP.

Usage. By default a reply carries the usage it was scripted with. With `bill_usage=True` the
stand-in bills each Message as the API does instead (`bill`): tokens counted from the request
and the answer (about 4 characters a token, `estimate_tokens`; `chars_per_token` sets another
rate), and prompt caching; `count_tokens` always counts a request's input as billing would.
The cached prefix is what precedes a `cache_control` breakpoint in the API's order (tools, then
system, then messages), up to and including the block that carries it. A prefix that reaches
the model's minimum cacheable length (`CACHE_MINIMUM_TOKENS`: 4,096 for Haiku 4.5) is written
once (`cache_creation_input_tokens`, billed at 1.25x the input price) and read by later
requests with the same prefix (`cache_read_input_tokens`, 0.1x) while the entry lives: five
minutes from its last use (the `ephemeral` TTL; `"ttl": "1h"` keeps it an hour), for the model
that wrote it only. A shorter prefix is not cached: all of it is `input_tokens`. Only the last
breakpoint is looked up (the API also finds hits at earlier ones; requests here carry one).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import secrets
import string
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = [
    "DEFAULT_MODEL",
    "FakeBatch",
    "MessagesApiStandIn",
    "RecordedRequest",
    "Reply",
    "delay",
    "disconnect",
    "error",
    "malformed",
    "raw",
    "route_ticket_default",
    "text",
    "tool_use",
]

DEFAULT_MODEL = "claude-haiku-4-5"
FALLBACK_POOL = "general"

# Statuses the SDK retries (408, 409, 429 and every 5xx): they get `retry-after-ms: 1` by default.
_RETRYABLE = frozenset({408, 409, 429})

_DEFAULT_ERROR_MESSAGES = {
    "invalid_request_error": "Invalid request.",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low.",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "Not found.",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit.",
    "api_error": "Internal server error.",
    "timeout_error": "Request timed out.",
    "overloaded_error": "Overloaded",
}

_ALPHABET = string.ascii_letters + string.digits


# Anthropic's minimum cacheable prefix per model (prompt-caching docs, 2026-11); other models 1,024.
CACHE_MINIMUM_TOKENS = {
    "claude-haiku-4-5": 4096,
    "claude-opus-4-5": 4096,
    "claude-sonnet-4-6": 1024,
}
CACHE_TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}


def _new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------
# Replies
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Reply:
    """One scripted answer. Build it with the module's constructors, not directly.

    Exactly one of `message` (a Message template: content, stop_reason, usage), `error` (the
    error object `{"type", "message"}`), `body` (raw bytes) is set, or `drop` (close the
    connection without answering).
    """

    status: int = 200
    message: Mapping[str, Any] | None = None
    error: Mapping[str, Any] | None = None
    body: bytes | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False

    def message_json(
        self, request: Mapping[str, Any] | None, *, service_tier: str = "standard"
    ) -> dict:
        """The full Message for `request` (its `model` echoed), or raise if this is no message."""
        if self.message is None:
            raise ValueError("this reply is not a Message")
        message = copy.deepcopy(dict(self.message))
        model = (request or {}).get("model") or DEFAULT_MODEL
        usage = dict(message.pop("usage"))
        usage["service_tier"] = service_tier
        content = []
        for block in message.pop("content"):
            block = dict(block)
            if block.get("type") == "tool_use" and not block.get("id"):
                block["id"] = _new_id("toolu_")
            content.append(block)
        return {
            "id": _new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": message.get("stop_reason"),
            "stop_sequence": None,
            "usage": usage,
        }

    def error_json(self, request_id: str) -> dict:
        if self.error is None:
            raise ValueError("this reply is not an error")
        return {"type": "error", "error": dict(self.error), "request_id": request_id}


def _usage(
    input_tokens: int,
    output_tokens: int,
    cache_read_input_tokens: int,
    cache_creation_input_tokens: int,
) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": cache_creation_input_tokens,
        "cache_read_input_tokens": cache_read_input_tokens,
    }


def tool_use(
    input: dict[str, Any],
    *,
    name: str = "route_ticket",
    input_tokens: int = 350,
    output_tokens: int = 40,
    cache_read_input_tokens: int = 0,
    cache_creation_input_tokens: int = 0,
) -> Reply:
    """A 200 Message whose only block is a `tool_use` of `name` with `input`."""
    return Reply(
        message={
            "content": [
                {"type": "tool_use", "id": "", "name": name, "input": copy.deepcopy(input)}
            ],
            "stop_reason": "tool_use",
            "usage": _usage(
                input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens
            ),
        }
    )


def text(
    text: str,
    *,
    input_tokens: int = 350,
    output_tokens: int = 40,
    cache_read_input_tokens: int = 0,
    cache_creation_input_tokens: int = 0,
    stop_reason: str = "end_turn",
) -> Reply:
    """A 200 Message whose only block is a text block (e.g. the model ignored the forced tool)."""
    return Reply(
        message={
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason,
            "usage": _usage(
                input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens
            ),
        }
    )


def error(
    status: int,
    error_type: str,
    message: str | None = None,
    *,
    headers: Mapping[str, str | None] | None = None,
    error_code: str | None = None,
) -> Reply:
    """The API's error answer: `status` with `{"type":"error","error":{"type","message"}}`.

    Statuses the SDK retries (408, 409, 429, >= 500) carry `retry-after-ms: 1` so retries in
    tests are immediate. `headers` adds or overrides headers (e.g. `{"x-should-retry": "false"}`,
    `{"retry-after": "2"}`); a value of None removes a default one (`{"retry-after-ms": None}`
    leaves the SDK to its own backoff, 0.5 s · 2ⁿ). `error_code` sets `error.details.error_code`,
    which the SDK uses to pick a more specific exception class.
    """
    merged: dict[str, str | None] = {}
    if status in _RETRYABLE or status >= 500:
        merged["retry-after-ms"] = "1"
    merged.update(headers or {})
    body: dict[str, Any] = {
        "type": error_type,
        "message": _DEFAULT_ERROR_MESSAGES.get(error_type, error_type)
        if message is None
        else message,
    }
    if error_code is not None:
        body["details"] = {"error_code": error_code}
    return Reply(
        status=status,
        error=body,
        headers={key: value for key, value in merged.items() if value is not None},
    )


def delay(seconds: float, then: Reply) -> Reply:
    """`then`, answered after sleeping `seconds` (to run into the client's timeout)."""
    return dataclasses.replace(then, delay=then.delay + seconds)


def malformed() -> Reply:
    """A 200 `application/json` answer whose body is not valid JSON."""
    return raw(200, b'{"id": "msg_truncated", "type": "message", "content": [')


def raw(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> Reply:
    """`status` with `body` verbatim (`content-type: application/json` unless `headers` says)."""
    return Reply(status=status, body=body, headers=dict(headers or {}))


def disconnect() -> Reply:
    """Close the connection without answering (the SDK sees a connection error)."""
    return Reply(drop=True)


def _pool_enum(body: Mapping[str, Any], tool_name: str) -> list[Any]:
    for tool in body.get("tools") or []:
        if isinstance(tool, Mapping) and tool.get("name") == tool_name:
            schema = tool.get("input_schema") or {}
            pool = (schema.get("properties") or {}).get("pool") or {}
            enum = pool.get("enum")
            if isinstance(enum, list):
                return enum
    return []


def route_ticket_default(body: Mapping[str, Any]) -> Reply:
    """The initial `default`: a valid `route_ticket` call for whatever tool schema was sent.

    The pool is the first value of the tool's `input_schema.properties.pool.enum`
    ("general" when the request has no such enum).
    """
    choice = body.get("tool_choice") or {}
    name = choice.get("name") if choice.get("type") == "tool" else None
    name = name or "route_ticket"
    enum = _pool_enum(body, name)
    return tool_use(
        {
            "pool": enum[0] if enum else FALLBACK_POOL,
            "confidence": 0.9,
            "action": "route",
            "reason": "stand-in",
            "missing_fields": [],
        },
        name=name,
    )


# --------------------------------------------------------------------------------------------
# Billing (bill_usage=True)
# --------------------------------------------------------------------------------------------


def estimate_tokens(value: Any, chars_per_token: float = 4.0) -> int:
    """Tokens of a request part: about 4 characters of its JSON a token (strings as they are).
    `chars_per_token` plays a tokenizer that counts the same text otherwise."""
    text = value if isinstance(value, str) else json.dumps(value)
    return int(len(text) / chars_per_token)


def cache_minimum(model: str) -> int:
    """The minimum cacheable prefix of `model`, dated ids (`...-20251001`) included."""
    for name, minimum in CACHE_MINIMUM_TOKENS.items():
        if model == name or model.startswith(name + "-"):
            return minimum
    return 1024


def _blocks(body: Mapping[str, Any]) -> list[Any]:
    """The request's cacheable blocks in the API's order: tools, system, message content."""
    blocks: list[Any] = list(body.get("tools") or [])
    system = body.get("system")
    if isinstance(system, str):
        blocks.append({"type": "text", "text": system})
    elif isinstance(system, list):
        blocks.extend(system)
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list):
            blocks.extend({"role": message.get("role"), **block} for block in content)
        else:
            blocks.append({"role": message.get("role") if message else None, "text": content})
    return blocks


def cached_prefix(body: Mapping[str, Any]) -> tuple[list[Any], float] | None:
    """The blocks up to and including the last one with `cache_control`, and its TTL; None
    when the request has no breakpoint."""
    blocks = _blocks(body)
    for index in range(len(blocks) - 1, -1, -1):
        block = blocks[index]
        control = block.get("cache_control") if isinstance(block, Mapping) else None
        if isinstance(control, Mapping):
            return blocks[: index + 1], CACHE_TTL_SECONDS.get(str(control.get("ttl", "5m")), 300.0)
    return None


def output_tokens(content: list[Mapping[str, Any]], chars_per_token: float = 4.0) -> int:
    """Tokens the model wrote: the JSON of each tool call's input, the text of text blocks.
    (A forced tool call's name is prefilled by the API, not written by the model.)"""
    total = 0
    for block in content:
        if block.get("type") == "tool_use":
            total += estimate_tokens(block.get("input") or {}, chars_per_token)
        else:
            total += estimate_tokens(str(block.get("text", "")), chars_per_token)
    return max(total, 1)


class PromptCache:
    """Cache entries by prefix, each alive until its TTL after its last use. Tokens are
    counted at `chars_per_token` characters of JSON a token."""

    def __init__(self, clock: Callable[[], float], chars_per_token: float = 4.0) -> None:
        self.clock = clock
        self.chars_per_token = chars_per_token
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._expiry.clear()

    def count(self, body: Mapping[str, Any]) -> int:
        """The input tokens of `body` as `bill` counts them: what count_tokens answers."""
        return max(estimate_tokens(_blocks(body), self.chars_per_token), 1)

    def bill(self, body: Mapping[str, Any], content: list[Mapping[str, Any]]) -> dict[str, int]:
        """The usage of a Message answering `body` with `content`, prompt caching included."""
        total = estimate_tokens(_blocks(body), self.chars_per_token)
        read = written = 0
        found = cached_prefix(body)
        if found is not None:
            prefix, ttl = found
            tokens = estimate_tokens(prefix, self.chars_per_token)
            if tokens >= cache_minimum(str(body.get("model") or DEFAULT_MODEL)):
                # Entries are per model, as the API keeps them.
                key = json.dumps([body.get("model"), prefix], sort_keys=True)
                now = self.clock()
                with self._lock:
                    alive = self._expiry.get(key, float("-inf")) > now
                    self._expiry[key] = now + ttl  # a read refreshes the entry, as the API does
                if alive:
                    read = tokens
                else:
                    written = tokens
        output = output_tokens(content, self.chars_per_token)
        return _usage(max(total - read - written, 0), output, read, written)


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as received. `headers` has lower-case names; `json` is the decoded body."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    json: dict[str, Any] | None
    body: bytes

    @property
    def api_key(self) -> str | None:
        """The key sent in `x-api-key`, or as `Authorization: Bearer KEY`."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" and token else None


@dataclasses.dataclass
class FakeBatch:
    """A Message Batch the stand-in holds: what was asked and the results it will serve."""

    id: str
    requests: list[dict[str, Any]]
    results: list[dict[str, Any]]
    created_at: datetime
    polls_before_end: int
    retrieve_calls: int = 0
    ended_at: datetime | None = None

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def as_json(self, base_url: str) -> dict[str, Any]:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if self.ended:
            for line in self.results:
                counts[line["result"]["type"]] += 1
        else:
            counts["processing"] = len(self.requests)
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": "ended" if self.ended else "in_progress",
            "request_counts": counts,
            "created_at": _rfc3339(self.created_at),
            "expires_at": _rfc3339(self.created_at + timedelta(hours=24)),
            "ended_at": _rfc3339(self.ended_at) if self.ended_at else None,
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": f"{base_url}/v1/messages/batches/{self.id}/results"
            if self.ended
            else None,
        }


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Answer:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    events: list[tuple[str, dict[str, Any]]] | None = None  # server-sent events


def _json_answer(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> _Answer:
    return _Answer(status, json.dumps(payload).encode(), headers=dict(headers or {}))


class MessagesApiStandIn:
    """A Messages API server on 127.0.0.1 with scripted replies.

    `require_key`: when set, a request whose key differs gets 401 `authentication_error`.
    `batch_polls_before_end`: 0 makes a batch "ended" from creation; N > 0 answers "in_progress"
    at creation and to the first N retrieves (`batches.results()` retrieves once too).
    `bill_usage`: bill every Message from its request and answer, prompt caching included
    (module docstring), instead of the usage it was scripted with. `clock` ages cache entries.
    `chars_per_token`: characters of JSON a token, in billing and in `count_tokens` (4: the
    estimate the router fills its prefix by; other values play a tokenizer it must measure).
    `count_tokens_reply`: when set, `POST /v1/messages/count_tokens` answers with it (an error).
    """

    def __init__(
        self,
        *,
        require_key: str | None = None,
        batch_polls_before_end: int = 0,
        bill_usage: bool = False,
        clock: Callable[[], float] = time.monotonic,
        chars_per_token: float = 4.0,
    ) -> None:
        self.bill_usage = bill_usage
        self.prompt_cache = PromptCache(clock, chars_per_token)
        self.count_tokens_reply: Reply | None = None
        self._initial_require_key = require_key
        self._initial_batch_polls = batch_polls_before_end
        self.require_key: str | None = require_key
        self.batch_polls_before_end: int = batch_polls_before_end
        self.default: Callable[[dict[str, Any]], Reply] = route_ticket_default
        self.requests: list[RecordedRequest] = []
        self.batches: dict[str, FakeBatch] = {}
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> MessagesApiStandIn:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.standin = self
        self._server = server
        host, port = server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="messages-api-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a delay()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> MessagesApiStandIn:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- scripting ---------------------------------------------------------------------------

    def enqueue(self, *replies: Reply) -> None:
        """Replies served in order, one per `POST /v1/messages` (and one per batch request)."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """How many enqueued replies are still unserved."""
        with self._lock:
            return len(self._queue)

    def reset(self) -> None:
        """Forget queue, requests, batches and cache entries; restore `default`, `require_key`
        and batch polls."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.batches.clear()
            self.default = route_ticket_default
            self.require_key = self._initial_require_key
            self.batch_polls_before_end = self._initial_batch_polls
            self.count_tokens_reply = None
        self.prompt_cache.clear()

    @property
    def count_requests(self) -> list[RecordedRequest]:
        """The recorded `POST /v1/messages/count_tokens` requests."""
        with self._lock:
            return [
                r
                for r in self.requests
                if r.method == "POST" and r.path.rstrip("/") == "/v1/messages/count_tokens"
            ]

    @property
    def message_requests(self) -> list[RecordedRequest]:
        """The recorded `POST /v1/messages` requests (each SDK attempt is one)."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path == "/v1/messages"]

    # -- request handling (called from server threads) ---------------------------------------

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            default = self.default
        return default(body)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _answer(self, request: RecordedRequest) -> _Answer:
        self._record(request)
        request_id = _new_id("req_")
        refusal = self._check_headers(request)
        if refusal is not None:
            return self._render_error(refusal, request_id)
        method, path = request.method, request.path.rstrip("/")
        parts = path.split("/")[1:]  # "", "v1", "messages", ... -> ["v1", "messages", ...]
        if method == "POST" and path == "/v1/messages":
            return self._messages(request, request_id)
        if method == "POST" and path == "/v1/messages/count_tokens":
            if self.count_tokens_reply is not None:
                return self._render_error(self.count_tokens_reply, request_id)
            return _json_answer(200, {"input_tokens": self.prompt_cache.count(request.json or {})})
        if path == "/v1/messages/batches" and method == "POST":
            return self._batch_create(request, request_id)
        if path == "/v1/messages/batches" and method == "GET":
            return self._batch_list()
        if len(parts) in (4, 5) and parts[:3] == ["v1", "messages", "batches"] and method == "GET":
            if len(parts) == 4:
                return self._batch_retrieve(parts[3], request_id)
            if parts[4] == "results":
                return self._batch_results(parts[3], request_id)
        return self._render_error(
            error(404, "not_found_error", f"No route for {method} {request.path}"), request_id
        )

    def _check_headers(self, request: RecordedRequest) -> Reply | None:
        key = request.api_key
        if key is None:
            return error(
                401,
                "authentication_error",
                "x-api-key header is required",
            )
        if "anthropic-version" not in request.headers:
            return error(400, "invalid_request_error", "anthropic-version: header is required")
        if self.require_key is not None and key != self.require_key:
            return error(401, "authentication_error", "invalid x-api-key")
        return None

    def _render_error(self, reply: Reply, request_id: str) -> _Answer:
        return _json_answer(
            reply.status, reply.error_json(request_id), {**reply.headers, "request-id": request_id}
        )

    def _render(self, reply: Reply, request: RecordedRequest, request_id: str) -> _Answer:
        headers = {**reply.headers, "request-id": request_id}
        if reply.drop:
            return _Answer(0, delay=reply.delay, drop=True)
        if reply.body is not None:
            content_type = next(
                (v for k, v in reply.headers.items() if k.lower() == "content-type"),
                "application/json",
            )
            rest = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            return _Answer(reply.status, reply.body, content_type, rest, delay=reply.delay)
        if reply.error is not None:
            answer = self._render_error(reply, request_id)
            answer.delay = reply.delay
            return answer
        message = self._billed(reply.message_json(request.json), request.json or {})
        if (request.json or {}).get("stream"):
            return _Answer(
                reply.status,
                content_type="text/event-stream; charset=utf-8",
                headers=headers,
                delay=reply.delay,
                events=list(_stream_events(message)),
            )
        answer = _json_answer(reply.status, message, headers)
        answer.delay = reply.delay
        return answer

    def _billed(self, message: dict[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
        if self.bill_usage:
            tier = message["usage"].get("service_tier")
            message["usage"] = {
                **self.prompt_cache.bill(body, message["content"]),
                "service_tier": tier,
            }
        return message

    def _messages(self, request: RecordedRequest, request_id: str) -> _Answer:
        if request.json is None:
            return self._render_error(
                error(400, "invalid_request_error", "The request body is not valid JSON."),
                request_id,
            )
        return self._render(self._next_reply(request.json), request, request_id)

    # -- batches -----------------------------------------------------------------------------

    def _batch_create(self, request: RecordedRequest, request_id: str) -> _Answer:
        entries = (request.json or {}).get("requests")
        if not isinstance(entries, list) or not entries:
            return self._render_error(
                error(400, "invalid_request_error", "requests: at least one request is required"),
                request_id,
            )
        results = []
        for entry in entries:
            params = dict(entry.get("params") or {})
            reply = self._next_reply(params)
            results.append(
                {"custom_id": entry.get("custom_id"), "result": self._batch_result(reply, params)}
            )
        now = datetime.now(UTC)
        batch = FakeBatch(
            id=_new_id("msgbatch_"),
            requests=[copy.deepcopy(entry) for entry in entries],
            results=results,
            created_at=now,
            polls_before_end=self.batch_polls_before_end,
            ended_at=now if self.batch_polls_before_end <= 0 else None,
        )
        with self._lock:
            self.batches[batch.id] = batch
        return _json_answer(200, batch.as_json(self.url), {"request-id": request_id})

    def _batch_result(self, reply: Reply, params: dict[str, Any]) -> dict[str, Any]:
        if reply.message is not None:
            return {
                "type": "succeeded",
                "message": self._billed(reply.message_json(params, service_tier="batch"), params),
            }
        if reply.error is not None:
            return {"type": "errored", "error": reply.error_json(_new_id("req_"))}
        fault = error(500, "api_error", "The stand-in had no Message for this request.")
        return {"type": "errored", "error": fault.error_json(_new_id("req_"))}

    def _find_batch(self, batch_id: str) -> FakeBatch | None:
        with self._lock:
            return self.batches.get(batch_id)

    def _batch_retrieve(self, batch_id: str, request_id: str) -> _Answer:
        batch = self._find_batch(batch_id)
        if batch is None:
            return self._render_error(
                error(404, "not_found_error", f"Message batch {batch_id} not found"), request_id
            )
        with self._lock:
            batch.retrieve_calls += 1
            if batch.ended_at is None and batch.retrieve_calls > batch.polls_before_end:
                batch.ended_at = datetime.now(UTC)
        return _json_answer(200, batch.as_json(self.url), {"request-id": request_id})

    def _batch_results(self, batch_id: str, request_id: str) -> _Answer:
        batch = self._find_batch(batch_id)
        if batch is None or not batch.ended:
            message = (
                f"Message batch {batch_id} not found"
                if batch is None
                else f"Message batch {batch_id} has not ended; results are not available yet"
            )
            status = 404 if batch is None else 400
            kind = "not_found_error" if batch is None else "invalid_request_error"
            return self._render_error(error(status, kind, message), request_id)
        body = b"".join(json.dumps(line).encode() + b"\n" for line in batch.results)
        return _Answer(200, body, "application/binary", {"request-id": request_id})

    def _batch_list(self) -> _Answer:
        with self._lock:
            data = [b.as_json(self.url) for b in reversed(list(self.batches.values()))]
        return _json_answer(
            200,
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            },
        )


def _stream_events(message: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The server-sent events the API streams for `message`."""
    usage = dict(message["usage"])
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    yield "message_start", {"type": "message_start", "message": start}
    for index, block in enumerate(message["content"]):
        if block["type"] == "tool_use":
            opening = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        else:
            opening = {**block, "text": ""}
            delta = {"type": "text_delta", "text": block.get("text", "")}
        yield (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": opening,
            },
        )
        yield "ping", {"type": "ping"}
        yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": usage["output_tokens"]},
        },
    )
    yield "message_stop", {"type": "message_stop"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    standin: MessagesApiStandIn

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout) leaves a broken pipe behind: not worth a traceback.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection, closed after the answer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            decoded = json.loads(body) if body else None
        except ValueError:
            decoded = None
        path, _, query = self.path.partition("?")
        request = RecordedRequest(
            method=self.command,
            path=path,
            query=query,
            headers={name.lower(): value for name, value in self.headers.items()},
            json=decoded if isinstance(decoded, dict) else None,
            body=body,
        )
        standin = self.server.standin
        answer = standin._answer(request)
        if answer.delay and standin._stopping.wait(answer.delay):
            return  # the stand-in is stopping: leave without answering
        if answer.drop:
            self.close_connection = True
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up
            self._write(answer)

    def _write(self, answer: _Answer) -> None:
        self.send_response(answer.status)
        self.send_header("content-type", answer.content_type)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if answer.events is None:
            self.send_header("content-length", str(len(answer.body)))
            self.send_header("connection", "close")
            self.end_headers()
            self.wfile.write(answer.body)
            return
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        for event, data in answer.events:
            self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()

"""The one door to Anthropic: the only module that imports the `anthropic` SDK.

The SDK retries 408/409/429/5xx/529, connection errors and timeouts itself (max_retries,
exponential back-off); what still fails reaches the pipeline as a ProviderError, and the
pipeline falls through to the next tier. Every HTTP request the SDK sends is counted
(`attempts` on the reply or the error), so a retry the SDK absorbed is still on the record.
"""

import json
import time
from contextvars import ContextVar
from functools import cache
from typing import Any

import anthropic
from anthropic.types import Message

from apps.core.background import waiting
from apps.orchestrator.pricing import Usage
from apps.orchestrator.providers.base import (
    ProviderCall,
    ProviderError,
    ProviderReply,
    TextReply,
)

# HTTP requests sent for the current call: the SDK's event hook runs in the calling thread.
_attempts: ContextVar[int] = ContextVar("anthropic_attempts", default=0)


def _count_attempt(_request: Any) -> None:
    _attempts.set(_attempts.get() + 1)


@cache
def _client(
    api_key: str, base_url: str | None, timeout: float, max_retries: int
) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key=api_key,
        base_url=base_url,
        timeout=timeout,
        max_retries=max_retries,
        http_client=anthropic.DefaultHttpxClient(event_hooks={"request": [_count_attempt]}),
    )


def _usage(message: Message) -> Usage:
    usage = message.usage
    return Usage(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        cache_read_tokens=usage.cache_read_input_tokens or 0,
        cache_creation_tokens=usage.cache_creation_input_tokens or 0,
    )


def _error_kind(exc: anthropic.APIError) -> tuple[str, int | None]:
    if isinstance(exc, anthropic.APITimeoutError):
        return "timeout", None
    if isinstance(exc, anthropic.APIConnectionError):
        return "connection", None
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        if status == 429:
            return "rate_limited", status
        if status == 529:
            return "overloaded", status
        if status >= 500:
            return "server_error", status
        if status in (401, 403):
            return "auth", status
        return "bad_request", status
    return "malformed", None


class AnthropicProvider:
    """Forced tool calls (routing) and plain-text completions (drafts) through the Messages API."""

    def __init__(
        self, *, api_key: str, base_url: str | None, timeout: float, max_retries: int
    ) -> None:
        self.client = _client(api_key, base_url, timeout, max_retries)

    @staticmethod
    def _params(call: ProviderCall) -> dict[str, Any]:
        # The tools and the system prompt (pools, examples) are the same on every call until a
        # pool or prompt version changes, and with many pools they are thousands of tokens: a
        # cache breakpoint on the system block lets the API bill that prefix at the cache-read
        # rate (10%) on later calls. Below the model's minimum cacheable length the API simply
        # does not cache. The customer's text is in `messages`, after the breakpoint.
        system: list[dict[str, Any]] = [{"type": "text", "text": call.system}]
        if call.cache_prefix:
            system[0]["cache_control"] = {"type": "ephemeral"}
        return {
            "model": call.model,
            "max_tokens": call.max_tokens,
            "system": system,
            "messages": call.messages,
            "tools": [call.tool],
            "tool_choice": {"type": "tool", "name": call.tool["name"]},
        }

    @staticmethod
    def _reply(message: Message, model: str, elapsed: float, attempts: int = 1) -> ProviderReply:
        content: list[dict[str, Any]] = [block.model_dump(mode="json") for block in message.content]
        tool_block = next((block for block in message.content if block.type == "tool_use"), None)
        return ProviderReply(
            model=message.model or model,
            tool_input=tool_block.input if tool_block is not None else None,
            tool_use_id=tool_block.id if tool_block is not None else None,
            content=content,
            raw_output=json.dumps(content)[:20000],
            usage=_usage(message),
            latency_ms=elapsed,
            attempts=attempts,
        )

    def batch_run(
        self, calls: dict[str, ProviderCall], *, poll_seconds: float, timeout_seconds: float
    ) -> dict[str, ProviderReply | ProviderError]:
        started = time.perf_counter()
        try:
            batch = self.client.messages.batches.create(
                requests=[
                    {"custom_id": custom_id, "params": self._params(call)}  # type: ignore[typeddict-item]
                    for custom_id, call in calls.items()
                ]
            )
            while batch.processing_status != "ended":
                if time.perf_counter() - started > timeout_seconds:
                    raise ProviderError("timeout", f"batch {batch.id} did not end in time")
                time.sleep(poll_seconds)
                batch = self.client.messages.batches.retrieve(batch.id)
            results: dict[str, ProviderReply | ProviderError] = {}
            for item in self.client.messages.batches.results(batch.id):
                elapsed = (time.perf_counter() - started) * 1000
                if item.result.type == "succeeded":
                    model = calls[item.custom_id].model
                    results[item.custom_id] = self._reply(item.result.message, model, elapsed)
                else:
                    results[item.custom_id] = ProviderError(
                        item.result.type, "batch request failed"
                    )
        except anthropic.APIError as exc:
            kind, status = _error_kind(exc)
            raise ProviderError(kind, str(exc)[:300], status=status) from exc
        return results

    def _create(self, params: dict[str, Any]) -> tuple[Message, float, int]:
        """One Messages API call (the SDK retries); every failure becomes a ProviderError.
        Returns the message, the time taken and how many HTTP requests it took."""
        started = time.perf_counter()
        token = _attempts.set(0)
        try:
            with waiting():  # another routing run of this process may compute meanwhile
                message = self.client.messages.create(**params)
        except anthropic.APIError as exc:
            kind, status = _error_kind(exc)
            elapsed = (time.perf_counter() - started) * 1000
            raise ProviderError(
                kind, str(exc)[:300], elapsed, status, attempts=_attempts.get()
            ) from exc
        except ValueError as exc:  # a body that is not JSON
            elapsed = (time.perf_counter() - started) * 1000
            raise ProviderError(
                "malformed", str(exc)[:300], elapsed, attempts=_attempts.get()
            ) from exc
        finally:
            attempts = _attempts.get()
            _attempts.reset(token)
        elapsed = (time.perf_counter() - started) * 1000
        if not isinstance(message, Message):  # a 200 whose body was not JSON (e.g. a proxy page)
            raise ProviderError(
                "malformed", "the answer was not a Message", elapsed, attempts=attempts
            )
        return message, elapsed, attempts

    def complete(self, call: ProviderCall) -> ProviderReply:
        message, elapsed, attempts = self._create(self._params(call))
        return self._reply(message, call.model, elapsed, attempts)

    def count_tokens(self, call: ProviderCall) -> int:
        """The input tokens of `call` by the API's count_tokens endpoint (free, and not
        retried: a count only sizes the prompt, and the call it sizes still follows)."""
        params = self._params(call)
        del params["max_tokens"]
        try:
            with waiting():
                counted = self.client.with_options(max_retries=0).messages.count_tokens(**params)
        except anthropic.APIError as exc:
            kind, status = _error_kind(exc)
            raise ProviderError(kind, str(exc)[:300], status=status) from exc
        except ValueError as exc:  # a body that is not JSON
            raise ProviderError("malformed", str(exc)[:300]) from exc
        if not isinstance(counted.input_tokens, int):
            raise ProviderError("malformed", "the count was not a number")
        return counted.input_tokens

    def draft(
        self, *, model: str, system: str, messages: list[dict[str, Any]], max_tokens: int
    ) -> TextReply:
        """A plain-text answer (no tools): the text blocks joined, with usage."""
        message, elapsed, _attempts_taken = self._create(
            {"model": model, "max_tokens": max_tokens, "system": system, "messages": messages}
        )
        text = "".join(block.text for block in message.content if block.type == "text")
        return TextReply(
            model=message.model or model,
            text=text,
            stop_reason=message.stop_reason,
            usage=_usage(message),
            latency_ms=elapsed,
        )

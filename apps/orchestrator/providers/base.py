"""What the pipeline needs from an LLM provider: one forced tool call, with usage and errors;
and what the desk needs: one plain-text completion (a draft reply), with usage and errors."""

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from apps.orchestrator.pricing import Usage


@dataclass(frozen=True)
class ProviderCall:
    model: str
    system: str
    messages: list[dict[str, Any]]
    tool: dict[str, Any]
    max_tokens: int = 300
    cache_prefix: bool = True  # mark tools + system as a prompt-cache prefix


@dataclass(frozen=True)
class ProviderReply:
    model: str
    tool_input: Any | None  # the forced tool's input, or None if the model answered otherwise
    tool_use_id: str | None
    content: list[dict[str, Any]]  # the assistant turn, to replay it in a retry
    raw_output: str
    usage: Usage
    latency_ms: float
    attempts: int = 1  # HTTP requests it took: more than one when the SDK retried


@dataclass(frozen=True)
class TextReply:
    """A plain-text completion: the text blocks joined, and what the call cost."""

    model: str
    text: str
    stop_reason: str | None  # end_turn, max_tokens, refusal, ...
    usage: Usage
    latency_ms: float


# What `ProviderError.kind` can be. The pipeline records a failed call's error as
# "<kind>: <message>", which is how metrics and alerts tell a provider failure from a bad answer.
PROVIDER_ERROR_KINDS: tuple[str, ...] = (
    "timeout",
    "connection",
    "rate_limited",
    "overloaded",
    "server_error",
    "bad_request",
    "auth",
    "malformed",
)


@dataclass
class ProviderError(Exception):
    """The provider failed after its own retries. `kind` names the failure for the record."""

    kind: str  # one of PROVIDER_ERROR_KINDS
    message: str
    latency_ms: float = 0.0
    status: int | None = None
    usage: Usage = field(default_factory=Usage)
    attempts: int = 1  # HTTP requests sent before giving up (0: none could be sent)

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class RouterProvider(Protocol):
    def complete(self, call: ProviderCall) -> ProviderReply:
        """Make one forced tool call; raise ProviderError when the provider fails."""
        ...


@runtime_checkable
class TokenCounter(Protocol):
    def count_tokens(self, call: ProviderCall) -> int:
        """The input tokens of `call` as the provider counts them (no model is run); raise
        ProviderError when it cannot count."""
        ...


class DraftProvider(Protocol):
    def draft(
        self, *, model: str, system: str, messages: list[dict[str, Any]], max_tokens: int
    ) -> TextReply:
        """Make one plain-text completion (no tools); raise ProviderError when it fails."""
        ...


class BatchProvider(Protocol):
    def batch_run(
        self, calls: dict[str, ProviderCall], *, poll_seconds: float, timeout_seconds: float
    ) -> dict[str, ProviderReply | ProviderError]:
        """Submit calls as one batch (half price), wait for it, and return each result by id."""
        ...

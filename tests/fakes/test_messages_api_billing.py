"""With bill_usage the stand-in bills requests as the API does, prompt caching included."""

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.fakes.messages_api import (
    CACHE_MINIMUM_TOKENS,
    MessagesApiStandIn,
    error,
    estimate_tokens,
    tool_use,
)

MODEL = "claude-haiku-4-5"
TOOL: dict[str, Any] = {
    "name": "route_ticket",
    "description": "Route the ticket.",
    "input_schema": {"type": "object", "properties": {"pool": {"type": "string"}}},
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def billed(clock: Clock) -> Iterator[MessagesApiStandIn]:
    with MessagesApiStandIn(bill_usage=True, clock=clock) as standin:
        yield standin


def ask(
    standin: MessagesApiStandIn,
    system_text: str,
    customer: str,
    *,
    cached: bool = True,
    model: str = MODEL,
) -> anthropic.types.Message:
    block: dict[str, Any] = {"type": "text", "text": system_text}
    if cached:
        block["cache_control"] = {"type": "ephemeral"}
    with anthropic.Anthropic(api_key="k", base_url=standin.url, max_retries=0) as sdk:
        params: dict[str, Any] = {
            "model": model,
            "max_tokens": 100,
            "system": [block],
            "tools": [TOOL],
            "tool_choice": {"type": "tool", "name": "route_ticket"},
            "messages": [{"role": "user", "content": customer}],
        }
        return sdk.messages.create(**params)


LONG = "Pools and examples. " * 900  # 18,000 characters: about 4,500 tokens


def test_a_prefix_above_the_minimum_is_written_once_then_read(billed):
    first = ask(billed, LONG, "I was charged twice")
    second = ask(billed, LONG, "My app crashes on start")

    assert first.usage.cache_read_input_tokens == 0
    written = first.usage.cache_creation_input_tokens
    assert written is not None
    assert written >= CACHE_MINIMUM_TOKENS[MODEL]
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.cache_read_input_tokens == written
    # What follows the breakpoint (the customer's turn) is billed as plain input.
    assert 0 < second.usage.input_tokens < 30


def test_a_prefix_below_the_minimum_is_never_cached(billed):
    short = "Pools and examples. " * 100
    ask(billed, short, "I was charged twice")
    again = ask(billed, short, "I was charged twice")

    assert again.usage.cache_read_input_tokens == 0
    assert again.usage.cache_creation_input_tokens == 0
    assert again.usage.input_tokens > estimate_tokens(short)


def test_no_breakpoint_no_cache(billed):
    ask(billed, LONG, "a", cached=False)
    again = ask(billed, LONG, "a", cached=False)

    assert again.usage.cache_read_input_tokens == 0
    assert again.usage.input_tokens > CACHE_MINIMUM_TOKENS[MODEL]


def test_another_prefix_is_another_entry(billed):
    ask(billed, LONG, "a")
    other = ask(billed, LONG + "One more pool.", "a")

    assert other.usage.cache_read_input_tokens == 0
    assert other.usage.cache_creation_input_tokens


def test_another_model_does_not_read_the_entry(billed):
    ask(billed, LONG, "a")
    other = ask(billed, LONG, "a", model="claude-sonnet-4-6")

    assert other.usage.cache_read_input_tokens == 0
    assert other.usage.cache_creation_input_tokens


def test_an_entry_lives_five_minutes_from_its_last_use(billed, clock):
    ask(billed, LONG, "a")
    clock.now += 299
    assert ask(billed, LONG, "b").usage.cache_read_input_tokens  # refreshed here
    clock.now += 299
    assert ask(billed, LONG, "c").usage.cache_read_input_tokens
    clock.now += 301
    expired = ask(billed, LONG, "d")
    assert expired.usage.cache_read_input_tokens == 0
    assert expired.usage.cache_creation_input_tokens


def test_output_is_what_the_model_wrote(billed):
    answer = {"action": "route", "pool": "billing", "confidence": 0.93, "reason": "double charge"}
    billed.enqueue(tool_use(answer, output_tokens=999, input_tokens=999))

    message = ask(billed, LONG, "a")

    assert message.usage.output_tokens == estimate_tokens(answer)
    assert message.usage.input_tokens != 999


def test_scripted_usage_stays_without_bill_usage():
    with MessagesApiStandIn() as standin:
        standin.enqueue(tool_use({"pool": "x"}, input_tokens=350, output_tokens=40))
        message = ask(standin, LONG, "a")
    assert (message.usage.input_tokens, message.usage.output_tokens) == (350, 40)
    assert message.usage.cache_read_input_tokens == 0


def test_count_tokens_counts_a_request_as_it_is_billed(billed):
    params: dict[str, Any] = {
        "model": MODEL,
        "system": [{"type": "text", "text": LONG}],
        "tools": [TOOL],
        "messages": [{"role": "user", "content": "my invoice is wrong"}],
    }
    with anthropic.Anthropic(api_key="k", base_url=billed.url, max_retries=0) as sdk:
        counted = sdk.messages.count_tokens(**params).input_tokens

    message = ask(billed, LONG, "my invoice is wrong", cached=False)

    assert counted == message.usage.input_tokens
    assert len(billed.count_requests) == 1


def test_another_tokenizer_counts_the_same_text_otherwise(clock):
    with MessagesApiStandIn(bill_usage=True, clock=clock, chars_per_token=5.0) as standin:
        fewer = ask(standin, LONG, "a", cached=False)
    with MessagesApiStandIn(bill_usage=True, clock=clock, chars_per_token=3.0) as standin:
        more = ask(standin, LONG, "a", cached=False)

    # 18,000 characters of system prompt: 3,600 tokens at 5 a token, 6,000 at 3.
    assert 3_600 < fewer.usage.input_tokens < 3_700
    assert 6_000 < more.usage.input_tokens < 6_150


def test_count_tokens_answers_the_scripted_error(billed):
    billed.count_tokens_reply = error(503, "overloaded_error", "count later")
    with (
        anthropic.Anthropic(api_key="k", base_url=billed.url, max_retries=0) as sdk,
        pytest.raises(anthropic.InternalServerError),
    ):
        sdk.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "a"}])
    billed.reset()
    assert billed.count_tokens_reply is None

"""With bill_usage the stand-in bills requests as the API does, prompt caching included."""

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.fakes.messages_api import (
    CACHE_MINIMUM_TOKENS,
    MessagesApiStandIn,
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

"""The router's prefix is cached: labelled examples bring tools + system prompt to the cache
minimum, the customer's text follows the breakpoint, and from the second call of a version on
the prefix is read at 10%. Through the real SDK, against the stand-in billing as the API does."""

import contextlib
import itertools
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache

from apps.flows.demo import DEFAULT_POOLS
from apps.orchestrator.local_model import OTHER, seed_examples
from apps.orchestrator.models import PromptVersion, RoutingDecision
from apps.orchestrator.prompts.examples import prompt_examples_rank
from apps.orchestrator.prompts.prefix import MAX_COUNTS
from apps.orchestrator.prompts.services import prompt_version_activate, prompt_version_append
from apps.orchestrator.services import text_route_dry_run
from apps.pools.models import Pool
from apps.pools.services import pool_upsert
from tests.fakes.messages_api import (
    CACHE_MINIMUM_TOKENS,
    MessagesApiStandIn,
    Reply,
    error,
    tool_use,
)

pytestmark = pytest.mark.django_db

TARGET_USD = Decimal("0.0006")
CUSTOMER = "My card payment failed twice, can you check invoice 7781?"


def short_answer(body: dict[str, Any]) -> Reply:
    """A router answer as the prompt asks for it: a few words of reason, no missing_fields."""
    pools = body["tools"][0]["input_schema"]["properties"]["pool"]["enum"]
    return tool_use(
        {"action": "route", "pool": pools[0], "confidence": 0.91, "reason": "payment failed"}
    )


@pytest.fixture
def billed(settings) -> Iterator[MessagesApiStandIn]:
    with MessagesApiStandIn(bill_usage=True) as standin:
        standin.default = short_answer
        settings.ANTHROPIC_API_KEY = "test-key"
        settings.ANTHROPIC_BASE_URL = standin.url
        yield standin


def version_with_examples(
    labelled: list[tuple[str, str]], pools: list[str], per_pool: int = 100
) -> PromptVersion:
    active = PromptVersion.objects.get(active=True)
    examples = prompt_examples_rank(
        labelled=labelled, corrections=[], pools=pools, per_pool=per_pool, max_chars=6 * 4300
    )
    version = prompt_version_append(
        text=active.text, few_shot=active.few_shot, examples=examples, parent=active, author=None
    )
    prompt_version_activate(version=version, actor=None)
    return version


def llm_decisions(text: str) -> list[RoutingDecision]:
    run = text_route_dry_run(text=text)
    return [d for d in run.decisions if d.tier == RoutingDecision.Tier.LLM]


def breakpoint_and_after(body: dict[str, Any]) -> tuple[str, str]:
    """(everything up to the cache breakpoint, everything after it) of a request, as JSON. The
    breakpoint is on the user turn's first block (the labelled examples); the system prompt
    holds neither the examples nor the customer's text."""
    (system,) = body["system"]
    first, *rest = body["messages"]
    examples, *after = first["content"]
    assert examples["cache_control"] == {"type": "ephemeral"}
    assert "Messages people routed earlier" in examples["text"]
    assert "Messages people routed earlier" not in system["text"]
    return json.dumps([body["tools"], system, examples]), json.dumps([after, rest])


def test_default_pools_second_call_reads_the_cache_below_target(billed):
    pools = [p.slug for p in _default_pools()]
    labelled = [(t, pool) for t, pool in seed_examples() if pool != OTHER]
    version_with_examples(labelled, pools)

    (first,) = llm_decisions(CUSTOMER)
    (second,) = llm_decisions("The app crashes when I open settings")

    assert first.cache_creation_tokens >= CACHE_MINIMUM_TOKENS["claude-haiku-4-5"]
    assert first.cache_read_tokens == 0
    assert second.cache_read_tokens == first.cache_creation_tokens
    assert second.cost_usd <= TARGET_USD
    before, after = breakpoint_and_after(billed.message_requests[0].json or {})
    assert "invoice 7781" in after
    assert "invoice 7781" not in before
    assert "payment failed twice" not in before


def test_many_pools_read_the_cache_below_target(billed):
    slugs = [f"team_{number:03d}" for number in range(150)]
    for slug in slugs:
        pool_upsert(slug=slug, name=slug, description=f"{slug.replace('_', ' ')} requests")
    labelled = [(f"question {n} about topic {slug}", slug) for slug in slugs for n in range(3)]
    version_with_examples(labelled, slugs)

    llm_decisions(CUSTOMER)
    (second,) = llm_decisions("Something else entirely")

    assert second.cache_read_tokens >= CACHE_MINIMUM_TOKENS["claude-haiku-4-5"]
    assert second.cost_usd <= TARGET_USD
    before, after = breakpoint_and_after(billed.message_requests[-1].json or {})
    assert "Something else entirely" in after
    assert "Something else entirely" not in before


def test_without_examples_the_prefix_stays_short_and_uncached(billed):
    _default_pools()
    llm_decisions(CUSTOMER)
    (second,) = llm_decisions(CUSTOMER)

    assert second.cache_read_tokens == 0
    assert second.cache_creation_tokens == 0


def _default_pools() -> list[Pool]:
    return [pool_upsert(**spec) for spec in DEFAULT_POOLS]


def test_a_filled_prefix_the_api_did_not_cache_is_logged(billed, settings, caplog):
    settings.ROUTER_PROMPT_PREFIX_TOKENS = 2000  # below Haiku 4.5's 4,096
    pools = [p.slug for p in _default_pools()]
    version_with_examples([(t, pool) for t, pool in seed_examples() if pool != OTHER], pools)

    (decision,) = llm_decisions(CUSTOMER)

    assert (decision.cache_read_tokens, decision.cache_creation_tokens) == (0, 0)
    assert "raise ROUTER_PROMPT_PREFIX_TOKENS" in caplog.text


# The prefix is sized by the API's own count: a tokenizer that counts the same characters as
# fewer or more tokens than the router's estimate (4 characters a token) still gets a prefix
# at the target, cached and no longer than it needs.

WORDS = (
    ["invoice", "parcel", "password", "refund", "screen", "charge", "login", "return"],
    ["broken", "late", "missing", "wrong", "double", "blocked", "lost", "stuck"],
    ["today", "again", "twice", "yesterday", "since monday", "this week", "at night", "now"],
)


def many_examples() -> tuple[list[tuple[str, str]], list[str]]:
    """Distinct labelled texts for the default pools: enough to fill any prefix."""
    pools = [p.slug for p in _default_pools()]
    labelled = []
    for index, (noun, state, when) in enumerate(itertools.product(*WORDS)):
        for form in ("my {} is {} {}", "the {} was {} {} please help"):
            labelled.append((form.format(noun, state, when), pools[index % len(pools)]))
    return labelled, pools


@contextlib.contextmanager
def tokenizer(settings, chars_per_token: float) -> Iterator[MessagesApiStandIn]:
    with MessagesApiStandIn(bill_usage=True, chars_per_token=chars_per_token) as standin:
        standin.default = short_answer
        settings.ANTHROPIC_API_KEY = "test-key"
        settings.ANTHROPIC_BASE_URL = standin.url
        yield standin


@pytest.fixture(autouse=True)
def _no_remembered_counts():
    cache.clear()  # counts are kept by content: another test's tokenizer must not answer


def read_after_write() -> RoutingDecision:
    (first,) = llm_decisions(CUSTOMER)
    (second,) = llm_decisions("Something else entirely")
    assert first.cache_creation_tokens == second.cache_read_tokens
    return second


def test_a_tokenizer_that_counts_fewer_tokens_still_gets_the_prefix_cached(settings):
    labelled, pools = many_examples()
    version_with_examples(labelled, pools, per_pool=400)
    with tokenizer(settings, chars_per_token=4.6) as standin:
        second = read_after_write()

    # Filled by the estimate (4,200 and 2.5%) this tokenizer counts about 3,750: not cached.
    assert 4_200 <= second.cache_read_tokens <= 4_200 + 40
    assert second.cost_usd <= TARGET_USD
    assert 1 <= len(standin.count_requests) <= MAX_COUNTS


def test_a_tokenizer_that_counts_more_tokens_reads_no_more_than_the_target(settings):
    labelled, pools = many_examples()
    version_with_examples(labelled, pools, per_pool=400)
    with tokenizer(settings, chars_per_token=3.3):
        second = read_after_write()

    # Filled by the estimate this tokenizer counts about 5,200, read on every call.
    assert 4_200 <= second.cache_read_tokens <= 4_200 + 40


def test_a_prefix_is_counted_once_per_version_pool_set_and_model(settings):
    labelled, pools = many_examples()
    version_with_examples(labelled, pools, per_pool=400)
    with tokenizer(settings, chars_per_token=4.0) as standin:
        llm_decisions(CUSTOMER)
        counted = len(standin.count_requests)
        for text in ("one more", "and another", "a third"):
            llm_decisions(text)
        assert len(standin.count_requests) == counted
        assert 1 <= counted <= MAX_COUNTS

        other = [(f"{text} quickly", pool) for text, pool in labelled]
        version_with_examples(other, pools, per_pool=400)  # other examples: another prefix
        llm_decisions(CUSTOMER)
        assert len(standin.count_requests) > counted


def test_a_failed_count_fills_by_the_estimate_and_routes(settings, caplog):
    labelled, pools = many_examples()
    version_with_examples(labelled, pools, per_pool=400)
    with tokenizer(settings, chars_per_token=4.0) as standin:
        standin.count_tokens_reply = error(500, "api_error", "counting is down")
        second = read_after_write()
        llm_decisions("a third message")

    assert second.valid
    assert second.pool is not None
    # Not retried, and not asked again for a minute: one count for three calls.
    assert len(standin.count_requests) == 1
    assert "not counted" in caplog.text
    # The estimate with its margin: 4,200 x 1.025 = 4,305 estimated tokens, or a little more.
    assert 4_305 <= second.cache_read_tokens <= 4_305 + 60


def test_examples_that_cannot_fill_the_prefix_are_not_shown(settings, caplog):
    pools = [p.slug for p in _default_pools()]
    version_with_examples([(t, pool) for t, pool in seed_examples() if pool != OTHER], pools)
    with tokenizer(settings, chars_per_token=4.6) as standin:
        (first,) = llm_decisions(CUSTOMER)

    # All 245 seed examples count about 3,800 tokens at 4.6 characters a token: never cached,
    # they would make every call cost about 3,800 tokens in full. Shown none, the call is short.
    (body,) = [r.json or {} for r in standin.message_requests]
    assert "Messages people routed earlier" not in json.dumps(body)
    assert first.input_tokens < 1_000
    assert "none shown" in caplog.text

"""The router's prefix is cached: labelled examples bring tools + system prompt to the cache
minimum, the customer's text follows the breakpoint, and from the second call of a version on
the prefix is read at 10%. Through the real SDK, against the stand-in billing as the API does."""

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from apps.flows.demo import DEFAULT_POOLS
from apps.orchestrator.local_model import OTHER, seed_examples
from apps.orchestrator.models import PromptVersion, RoutingDecision
from apps.orchestrator.prompts.examples import prompt_examples_rank
from apps.orchestrator.prompts.services import prompt_version_activate, prompt_version_append
from apps.orchestrator.services import text_route_dry_run
from apps.pools.models import Pool
from apps.pools.services import pool_upsert
from tests.fakes.messages_api import CACHE_MINIMUM_TOKENS, MessagesApiStandIn, Reply, tool_use

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


def version_with_examples(labelled: list[tuple[str, str]], pools: list[str]) -> PromptVersion:
    active = PromptVersion.objects.get(active=True)
    examples = prompt_examples_rank(
        labelled=labelled, corrections=[], pools=pools, max_chars=4 * 4300
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

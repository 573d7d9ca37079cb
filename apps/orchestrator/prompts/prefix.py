"""How many of a prompt version's labelled examples a router call shows: as many as bring the
cached prefix (tools, system prompt, examples block) to ROUTER_PROMPT_PREFIX_TOKENS as the API
counts tokens.

The API caches a prefix only from the model's minimum (4,096 tokens for Haiku 4.5), and reads
every cached token at a tenth of the input price on every call. The estimate of about four
characters a token (text.py) can be off either way for the model's tokenizer: counting fewer
tokens than estimated leaves the prefix under the minimum, uncached, paid in full on every
call; counting more pays for examples past the target on every call. So the first call for a
prefix asks the provider to count it (Anthropic's count_tokens endpoint: free, no model run),
rescales the estimate by what was counted and counts again, at most MAX_COUNTS times, and
shows the fewest examples whose prefix was counted at the target or above; none when even all
of them fall short (an uncached prefix full of examples would cost several times an unfilled one).

That number is kept in the cache (shared by every process at scale) under a hash of the model,
tools, system prompt, shown examples and target: a change to any of them counts afresh, and a
prompt version's prefix is counted once per model and pool set, not once per call. Without a
count (a provider that cannot count, or a count that failed) the estimate is filled to the
target and UNCOUNTED_MARGIN more; a failed count is tried again after FAILED_COUNT_SECONDS.
"""

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

from apps.orchestrator.models import PromptVersion
from apps.orchestrator.prompts import text as prompt_text
from apps.orchestrator.providers.base import (
    ProviderCall,
    ProviderError,
    ProviderReply,
    TokenCounter,
)
from apps.pools.models import Pool

logger = logging.getLogger(__name__)

# The estimate's error for a tokenizer nobody counted with: fill that much past the target.
UNCOUNTED_MARGIN = 1.025
MAX_COUNTS = 4
COUNTED_SECONDS = 24 * 3600  # a count only goes stale with its key: keep it a day
FAILED_COUNT_SECONDS = 60


@dataclass(frozen=True)
class _Prefix:
    """A router call cut at its cache breakpoint: tools, system and the first `k` examples."""

    shown: list[dict[str, Any]]
    pools: Sequence[Pool]
    tool: dict[str, Any]
    system: str
    model: str

    def block(self, k: int) -> str:
        return prompt_text.labelled_block(self.shown[:k], self.pools)

    def estimate(self, k: int) -> int:
        return prompt_text.prefix_tokens_estimate(
            tool=self.tool, system=self.system, block=self.block(k)
        )

    def call(self, k: int) -> ProviderCall:
        content = [{"type": "text", "text": self.block(k), "cache_control": {"type": "ephemeral"}}]
        return ProviderCall(
            model=self.model,
            system=self.system,
            tool=self.tool,
            messages=[{"role": "user", "content": content}],
        )

    def fill(self, scale: float, goal: float) -> int:
        """The fewest examples whose estimate times `scale` reaches `goal` (all: none does)."""
        return prompt_text.smallest_reaching(
            len(self.shown), lambda k: self.estimate(k) * scale >= goal
        )


def prefix_examples(
    *,
    examples: Sequence[dict[str, Any]],
    pools: Sequence[Pool],
    tool: dict[str, Any],
    system: str,
    model: str,
    target_tokens: int,
    counter: TokenCounter | None,
) -> str:
    """The user turn's first block for a call to `model`: the labelled `examples` of active
    `pools` that bring the prefix to `target_tokens` (counted by `counter` where it can);
    "" when there is nothing to show or no target (0)."""
    prefix = _Prefix(prompt_text.examples_active(examples, pools), pools, tool, system, model)
    if target_tokens <= 0 or not prefix.shown:
        return ""
    signature = json.dumps([model, tool, system, prefix.shown, target_tokens], sort_keys=True)
    key = "router-prefix:" + hashlib.sha256(signature.encode()).hexdigest()
    count = cache.get(key)
    if not isinstance(count, int):
        count, seconds = _examples_count(prefix, target_tokens, counter)
        cache.set(key, count, seconds)
    return prefix.block(count)


def _examples_count(prefix: _Prefix, target: int, counter: TokenCounter | None) -> tuple[int, int]:
    """(examples to show, seconds to keep that number)."""
    guess = prefix.fill(1.0, target * UNCOUNTED_MARGIN)
    if counter is None:
        return guess, COUNTED_SECONDS
    counted: dict[int, int] = {}
    k = guess
    try:
        for _ in range(MAX_COUNTS):
            counted[k] = counter.count_tokens(prefix.call(k))
            k = prefix.fill(counted[k] / max(prefix.estimate(k), 1), target)
            if k in counted:
                break
    except ProviderError as exc:
        logger.warning(
            "router prefix for %s not counted (%s): filled by the estimate, %s examples",
            prefix.model,
            exc,
            guess,
        )
        return guess, FAILED_COUNT_SECONDS
    reaching = [shown_k for shown_k, tokens in counted.items() if tokens >= target]
    if reaching:
        return min(reaching), COUNTED_SECONDS
    everything = len(prefix.shown)
    if everything in counted:
        # Even every example falls short: the prefix would not be cached, and each call would
        # pay all of it in full. Shown none, it costs what an unfilled prompt does.
        logger.warning(
            "router prefix for %s: all %s examples make %s tokens, under the %s to fill; none "
            "shown (label more examples, or lower ROUTER_PROMPT_PREFIX_TOKENS to the model's "
            "minimum)",
            prefix.model,
            everything,
            counted[everything],
            target,
        )
        return 0, COUNTED_SECONDS
    return k, COUNTED_SECONDS


def prefix_uncached_warn(
    *, call: ProviderCall, reply: ProviderReply, prompt: PromptVersion | None
) -> None:
    """Log a prefix filled with examples that the API neither wrote nor read: it is paid in
    full on every call (the target is below the model's minimum, or the count was off)."""
    usage = reply.usage
    if (
        call.cache_prefix
        and prompt is not None
        and prompt.examples
        and settings.ROUTER_PROMPT_PREFIX_TOKENS > 0
        and not (usage.cache_read_tokens or usage.cache_creation_tokens)
    ):
        logger.warning(
            "router prompt v%s: the API cached none of the %s input tokens of %s; raise "
            "ROUTER_PROMPT_PREFIX_TOKENS (now %s) above the model's minimum",
            prompt.pk,
            usage.input_tokens,
            reply.model,
            settings.ROUTER_PROMPT_PREFIX_TOKENS,
        )

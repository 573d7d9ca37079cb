"""Which labelled examples a prompt version carries, most useful first.

The router's prefix (tools + system prompt) is cached by the API only from a minimum length
(4,096 tokens for Haiku 4.5); below it every call pays the full input price. A version
therefore carries labelled examples in order of usefulness, and the router shows as many as
bring the prefix to ROUTER_PROMPT_PREFIX_TOKENS for the pools that are active (text.py). The
order, from people's labelled data (the curated training examples and the labels reviewers and
agents gave, which is what the local model learns from):

1. one anchor per pool: its most central example, the text nearest the pool's TF-IDF centroid
   (typical wording, not an outlier), so that every pool is shown once before any twice;
2. the confusions people corrected: texts routed to one pool that a person moved to another,
   newest first, at most `corrections_per_pool` per pool: they mark the boundaries the router
   got wrong;
3. then further rounds of central examples, the 2nd most central of every pool, the 3rd, ...
   up to `per_pool`, and no more than a prefix could show (`max_chars`).

Every text passes the router's own input validation first: personal data is redacted as it is
for a customer's message, and a text the injection detector flags is left out, since examples
are part of the system prompt. Duplicates (by normalised text) count once.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np

from apps.core.errors import ValidationFailed
from apps.orchestrator.validation import input_validate, text_normalise


def _clean(text: str) -> str | None:
    """The text as the router would see it (redacted), or None when it may not be shown."""
    try:
        validated = input_validate(text, max_chars=500)
    except ValidationFailed:
        return None
    if validated.injection_signals:
        return None
    return " ".join(validated.redacted.split()) or None


def _usable(rows: Sequence[tuple[str, str]], pools: set[str]) -> list[tuple[str, str]]:
    seen: set[str] = set()
    usable = []
    for text, pool in rows:
        if pool not in pools:
            continue
        cleaned = _clean(text)
        if cleaned is None:
            continue
        key = text_normalise(cleaned)
        if key in seen:
            continue
        seen.add(key)
        usable.append((cleaned, pool))
    return usable


def _central(rows: list[tuple[str, str]], per_pool: int) -> dict[str, list[str]]:
    """Per pool, up to `per_pool` texts nearest the pool's TF-IDF centroid, nearest first."""
    if not rows:
        return {}
    from sklearn.feature_extraction.text import TfidfVectorizer  # a second to import: on use

    rows = sorted(rows, key=lambda row: (row[1], row[0]))  # the input's order must not matter
    matrix = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1).fit_transform(
        [text for text, _ in rows]
    )
    by_pool: dict[str, list[int]] = {}
    for index, (_, pool) in enumerate(rows):
        by_pool.setdefault(pool, []).append(index)
    central: dict[str, list[str]] = {}
    for pool, indices in sorted(by_pool.items()):
        block = matrix[indices]
        centroid = np.asarray(block.mean(axis=0)).ravel()
        scores = np.asarray(block @ centroid).ravel()
        # Nearest first; ties by text so that the order never depends on the input's order.
        # (Scores rounded: float noise must not break a tie.)
        ranked = sorted(
            zip(scores, indices, strict=True), key=lambda s: (-round(s[0], 9), rows[s[1]][0])
        )
        central[pool] = [rows[index][0] for _, index in ranked[:per_pool]]
    return central


def prompt_examples_rank(
    *,
    labelled: Sequence[tuple[str, str]],
    corrections: Sequence[tuple[str, str]],
    pools: Sequence[str],
    per_pool: int = 100,
    corrections_per_pool: int = 3,
    max_chars: int | None = None,
) -> list[dict[str, Any]]:
    """Labelled examples `{"text", "pool"}` for `pools`, most useful first (module docstring).

    `labelled`: (text, pool) pairs; `corrections`: (text, right pool) pairs of texts people
    moved from another pool, newest first. The list stops once its texts hold `max_chars`
    characters: more could never be shown in a prefix of that size."""
    slugs = set(pools)
    central = _central(_usable(labelled, slugs), per_pool)
    chosen: list[dict[str, Any]] = []
    seen: set[str] = set()

    def take(text: str, pool: str) -> None:
        key = text_normalise(text)
        if key not in seen:
            seen.add(key)
            chosen.append({"text": text, "pool": pool})

    for pool in sorted(central):
        take(central[pool][0], pool)
    taken: dict[str, int] = {}
    for text, pool in _usable(corrections, slugs):
        if taken.get(pool, 0) < corrections_per_pool:
            taken[pool] = taken.get(pool, 0) + 1
            take(text, pool)
    for rank in range(1, per_pool):
        for pool in sorted(central):
            if rank < len(central[pool]):
                take(central[pool][rank], pool)
    if max_chars is None:
        return chosen
    kept, total = [], 0
    for example in chosen:
        if total >= max_chars:
            break
        kept.append(example)
        total += len(example["text"])
    return kept

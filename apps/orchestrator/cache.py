"""The decision cache: an accepted LLM decision, keyed by what determined it.

Key: the normalised redacted text, the prompt version and the active pool set, so a prompt
change or a pool change never serves a stale answer. Stored in Django's cache (local memory
embedded, Redis when scaled out) for ROUTER_CACHE_TTL_SECONDS. While Redis is out of reach
the cache is a miss and a write is skipped: the next tiers decide.
"""

import hashlib
import json
from typing import Any

from django.conf import settings
from django.core.cache import cache

from apps.core.outages import REDIS_ERRORS, outage_log
from apps.orchestrator.validation import text_normalise

PREFIX = "router:decision:"


def decision_key(*, text: str, prompt_version: int, pools: list[str]) -> str:
    """Cache key for a redacted text under a prompt version and pool set."""
    material = json.dumps([text_normalise(text), prompt_version, sorted(pools)])
    return PREFIX + hashlib.sha256(material.encode("utf-8")).hexdigest()


def decision_get(key: str) -> dict[str, Any] | None:
    try:
        value = cache.get(key)
    except REDIS_ERRORS as exc:
        outage_log(exc, where="the decision cache (a miss)")
        return None
    return value if isinstance(value, dict) else None


def decision_set(key: str, decision: dict[str, Any]) -> None:
    try:
        cache.set(key, decision, timeout=settings.ROUTER_CACHE_TTL_SECONDS)
    except REDIS_ERRORS as exc:
        outage_log(exc, where="the decision cache (not written)")

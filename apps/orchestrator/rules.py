"""Matching admin-editable routing rules (keywords and regular expressions)."""

import re
from collections.abc import Sequence
from functools import lru_cache

from apps.orchestrator.models import RoutingRule


@lru_cache(maxsize=1024)
def _compiled(kind: str, pattern: str) -> re.Pattern[str] | None:
    try:
        if kind == RoutingRule.Kind.REGEX:
            return re.compile(pattern, re.IGNORECASE)
        return re.compile(r"(?<!\w)" + re.escape(pattern.strip()) + r"(?!\w)", re.IGNORECASE)
    except re.error:
        return None  # saved before validation existed: never matches, never crashes routing


def rule_match(text: str, rules: Sequence[RoutingRule]) -> RoutingRule | None:
    """The first active rule (highest priority first) whose pattern occurs in `text`."""
    for rule in sorted(rules, key=lambda r: (-r.priority, r.pk or 0)):
        if not rule.active:
            continue
        pattern = _compiled(rule.kind, rule.pattern)
        if pattern is not None and pattern.search(text):
            return rule
    return None

"""Matching admin-editable routing rules (keywords and regular expressions) on RE2.

The engine (`rule_engine.py`) runs in time linear in the text, whatever an admin wrote. A rule
saved before patterns were checked against RE2 may hold one it cannot run (a backreference,
a lookaround): that rule is skipped, with one warning per process, and routing goes on.
"""

import logging
from collections.abc import Sequence
from functools import lru_cache

from apps.orchestrator.models import RoutingRule
from apps.orchestrator.rule_engine import RulePattern, RulePatternError, rule_pattern_compile

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1024)
def _compiled(rule_id: int | None, name: str, kind: str, pattern: str) -> RulePattern | None:
    try:
        return rule_pattern_compile(pattern, regex=kind == RoutingRule.Kind.REGEX)
    except RulePatternError as exc:
        # Cached with the rule: one line per process, not one per message.
        logger.warning("routing rule %s (%r) skipped: %s", rule_id, name, exc)
        return None


def rule_match(text: str, rules: Sequence[RoutingRule]) -> RoutingRule | None:
    """The first active rule (highest priority first) whose pattern occurs in `text`."""
    for rule in sorted(rules, key=lambda r: (-r.priority, r.pk or 0)):
        if not rule.active:
            continue
        pattern = _compiled(rule.pk, rule.name, rule.kind, rule.pattern)
        if pattern is not None and pattern.search(text):
            return rule
    return None

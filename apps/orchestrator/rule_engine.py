"""The engine routing rules run on: RE2, through Google's `google-re2` binding (`import re2`).

Rules are written by admins and run on every customer's text. Python's `re` backtracks, so a
pattern such as `^(\\w+\\s?)+$` takes minutes on a 30-character message, holding the GIL of a
process that also serves sockets. RE2 runs in time linear in the text's length, whatever the
pattern; the price is that it refuses what needs backtracking (backreferences, lookahead and
lookbehind, atomic groups, possessive quantifiers). Such a pattern is refused when a rule is
saved, with the reason in words (`RulePatternError`). See docs/orchestrator.md, "Rules".

Both kinds ignore case (RE2's `case_sensitive` option: Unicode simple case folding, as
`re.IGNORECASE`). A keyword matches as a whole word or phrase; its boundary counts letters and
digits of every script and `_` as word characters, as Python's `\\w` did (RE2's `\\w` and `\\b`
are ASCII only, so the boundary is spelled with `\\pL\\pN_`).
"""

from typing import Protocol

import re2


class RulePatternError(ValueError):
    """A pattern the rule engine cannot run; the message says why, for the admin."""


class RulePattern(Protocol):
    def search(self, text: str) -> object | None: ...


_NOT_WORD = r"[^\pL\pN_]"

# What RE2's parser says (the start of its message) → what an admin can do about it.
_BACKREFERENCE = "backreferences such as \\1 or (?P=name) are not supported"
_LOOKAROUND = "lookahead and lookbehind such as (?=…), (?!…), (?<=…), (?<!…) are not supported"
_ATOMIC = "atomic groups and possessive quantifiers such as (?>…) or a++ are not supported"
_HINTS: dict[str, str] = {
    **{f"invalid escape sequence: \\{digit}": _BACKREFERENCE for digit in range(1, 10)},
    "invalid escape sequence: \\k": _BACKREFERENCE,
    "invalid perl operator: (?P": _BACKREFERENCE,  # (?P<name>…) parses; (?P=name) does not
    "invalid perl operator: (?=": _LOOKAROUND,
    "invalid perl operator: (?!": _LOOKAROUND,
    "invalid perl operator: (?<": _LOOKAROUND,
    "invalid perl operator: (?>": _ATOMIC,
    "bad repetition operator: ++": _ATOMIC,
    "bad repetition operator: *+": _ATOMIC,
    "bad repetition operator: ?+": _ATOMIC,
    "invalid escape sequence: \\Z": "write \\z for the end of the text",
    "invalid perl operator: (?x": "verbose mode (?x) is not supported",
    "invalid perl operator: (?#": "(?#…) comments are not supported",
    "invalid repetition size": "a counted repetition may be at most {1000}",
}


def rule_pattern_compile(pattern: str, *, regex: bool) -> RulePattern:
    """The compiled matcher of a keyword (whole words, any case) or a regex (RE2, any case).

    Raises RulePatternError, with a readable reason, for a pattern RE2 cannot run.
    """
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # the reason goes to the admin (or the one warning), not stderr
    if regex:
        source = pattern
    else:
        source = f"(?:^|{_NOT_WORD}){re2.escape(pattern.strip())}(?:{_NOT_WORD}|$)"
    try:
        compiled: RulePattern = re2.compile(source, options)
    except re2.error as exc:
        raise RulePatternError(_reason(exc)) from exc
    return compiled


def _reason(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else ""
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    detail = str(detail)
    hint = next((why for start, why in _HINTS.items() if detail.startswith(start)), "")
    said = f"{hint} ({detail})" if hint else detail
    return f"Not a valid regular expression for the rule engine (RE2): {said}."

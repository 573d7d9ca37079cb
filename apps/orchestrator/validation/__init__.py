"""Tier 1 of the routing pipeline: refuse unusable text, minimise personal data, flag injection.

Customer text is untrusted. `input_validate` is the only door from a stored message to the
later tiers: it refuses what cannot be processed, returns the text with personal data replaced
by placeholders (no model, cache or log downstream should see anything else), and names the
prompt-injection patterns it found. Everything here is pure: no database, no settings, no I/O.

The work is split by concern: `characters` (what is refused or stripped), `pii` (redaction)
and `injection` (detection); this module is the door and re-exports their public names.
"""

import re
import unicodedata
from dataclasses import dataclass

from apps.core.errors import EmptyText, InvalidText, TextTooLong, ValidationFailed
from apps.core.text import refused_characters
from apps.orchestrator.validation.characters import strip_invisible
from apps.orchestrator.validation.injection import SIGNAL_NAMES, SignalName, injection_detect
from apps.orchestrator.validation.pii import RedactionKind, pii_redact

_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029]")

__all__ = [
    "SIGNAL_NAMES",
    "ControlCharacters",
    "EmptyInput",
    "InputRefused",
    "InputTooLong",
    "RedactionKind",
    "SignalName",
    "ValidatedInput",
    "injection_detect",
    "input_validate",
    "pii_redact",
    "refused_characters",
    "text_normalise",
]

# --------------------------------------------------------------------------------------------
# Errors


class InputRefused(ValidationFailed):
    """Customer text the pipeline will not process; the customer should be asked to resend."""

    code = "input_refused"
    default_message = "The message cannot be processed."


class EmptyInput(InputRefused, EmptyText):
    code = "empty_text"
    default_message = "The message is empty. Please type your question."


class InputTooLong(InputRefused, TextTooLong):
    code = "text_too_long"
    default_message = "The message is too long. Please shorten it."


class ControlCharacters(InputRefused, InvalidText):
    code = "control_characters"
    default_message = (
        "The message contains hidden control or text-direction characters. "
        "Please retype it as plain text."
    )


# --------------------------------------------------------------------------------------------
# Result


@dataclass(frozen=True)
class ValidatedInput:
    redacted: str  # the text with personal data replaced by [EMAIL], [PHONE], [CARD], [IBAN]
    redactions: dict[RedactionKind, int]  # kind -> count; only kinds found
    injection_signals: list[SignalName]  # the injection patterns that matched; empty if none

    @property
    def injection_suspected(self) -> bool:
        """Whether any injection pattern matched."""
        return bool(self.injection_signals)


# --------------------------------------------------------------------------------------------
# Validation


def input_validate(text: str, *, max_chars: int = 4000) -> ValidatedInput:
    """Refuse unusable text; return it NFKC-normalised, with PII redacted and injection flagged."""
    if len(text) > max_chars:
        raise InputTooLong(
            f"Messages are limited to {max_chars:,} characters.",
            extra={"limit": max_chars, "length": len(text)},
        )
    refused = refused_characters(text)
    if refused:
        raise ControlCharacters(extra={"characters": refused[:10]})
    normalised = unicodedata.normalize("NFKC", strip_invisible(text))
    normalised = _LINE_BREAKS.sub("\n", normalised).strip()
    if not normalised:
        raise EmptyInput()
    if len(normalised) > max_chars:  # NFKC can expand a character into many (e.g. U+FDFA)
        raise InputTooLong(
            f"Messages are limited to {max_chars:,} characters.",
            extra={"limit": max_chars, "length": len(normalised)},
        )
    redacted, redactions = pii_redact(normalised)
    return ValidatedInput(
        redacted=redacted, redactions=redactions, injection_signals=injection_detect(text)
    )


def text_normalise(text: str) -> str:
    """Reduce text to a cache-key form: NFKC, casefolded, single-spaced, no edge punctuation."""
    folded = unicodedata.normalize("NFKC", strip_invisible(text))
    folded = unicodedata.normalize("NFKC", folded.casefold())
    folded = re.sub(r"\s+([,.;:!?])", r"\1", " ".join(folded.split()))
    start, end = 0, len(folded)
    while start < end and _is_edge_noise(folded[start]):
        start += 1
    while end > start and _is_edge_noise(folded[end - 1]):
        end -= 1
    return folded[start:end]


def _is_edge_noise(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch).startswith("P")

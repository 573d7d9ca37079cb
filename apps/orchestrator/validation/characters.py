"""Characters: which customer text is refused outright and which invisible characters are stripped.

Character policy (why some characters are refused and others stripped):
* Refused (`ControlCharacters`, by `refused_characters` in apps/core/text.py, which every input
  shares): C0/C1 control characters other than tab, newline and carriage
  return (NUL, ESC and terminal escape sequences, DEL, ...), lone surrogates, and the bidi
  embedding/override/isolate controls U+202A-U+202E and U+2066-U+2069. Keyboards do not type
  them; they make what an agent sees differ from what a program or model reads (Trojan Source),
  and stripping them would silently re-order the text the customer meant. Asking the customer
  to resend plain text is safer than guessing.
* Stripped: every other invisible format character (Unicode category Cf: zero-width space,
  joiners, word joiner, soft hyphen, BOM, LRM/RLM, Unicode tag characters), variation
  selectors and Hangul fillers. They arrive innocently from copy-paste, emoji sequences and
  some scripts, so refusing them would turn real customers away; removing them changes nothing
  a person reads but stops them hiding text from, or splitting words past, the PII and
  injection patterns. Text smuggled in tag characters or long variation-selector runs is
  decoded for the detector and reported as `encoding_tricks`.
"""

import re
import unicodedata

_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")  # Hangul fillers render as nothing
_TAG_FIRST, _TAG_LAST = 0xE0000, 0xE007F


def _is_variation_selector(ch: str) -> bool:
    cp = ord(ch)
    return 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF


def _is_invisible(ch: str) -> bool:
    return unicodedata.category(ch) == "Cf" or _is_variation_selector(ch) or ch in _FILLERS


def strip_invisible(text: str) -> str:
    if text.isascii():
        return text
    return "".join(ch for ch in text if not _is_invisible(ch)).replace("\u2800", " ")


def hidden_payloads(text: str) -> list[str]:
    """Text smuggled in Unicode tag characters or long variation-selector runs."""
    payloads: list[str] = []
    if text.isascii():
        return payloads
    for run in re.findall(f"[{chr(_TAG_FIRST)}-{chr(_TAG_LAST)}]+", text):
        decoded = "".join(chr(ord(ch) - _TAG_FIRST) for ch in run)
        # An emoji subdivision flag (England, Scotland, Wales) is at most 6 tag letters + cancel.
        if len(decoded) > 7 or not re.fullmatch(r"[a-z0-9]*\x7f?", decoded):
            payloads.append(decoded)
    for run in re.findall("[\ufe00-\ufe0f\U000e0100-\U000e01ef]{3,}", text):
        # The published "emoji smuggling" scheme maps each byte to one variation selector.
        data = bytes(
            ord(ch) - 0xFE00 if ord(ch) <= 0xFE0F else ord(ch) - 0xE0100 + 16 for ch in run
        )
        payloads.append(data.decode("utf-8", errors="replace"))
    return payloads

"""Characters no customer or staff text may carry, checked wherever text comes in.

Refused: C0/C1 control characters other than tab, newline and carriage return (NUL, ESC and
terminal escape sequences, DEL, ...), lone surrogates, and the bidi embedding/override/isolate
controls U+202A-U+202E and U+2066-U+2069. Keyboards do not type them; they make what an agent
sees differ from what a program or model reads (Trojan Source). The routing pipeline's input
validation (apps/orchestrator/validation.py) explains the whole character policy.
"""

import unicodedata

ALLOWED_CONTROLS = frozenset("\t\n\r")
BIDI_CONTROLS = frozenset(chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def refused_characters(text: str) -> list[str]:
    """Code points of the refused characters in `text`, in order of first appearance."""
    found: dict[str, None] = {}
    for ch in text:
        category = unicodedata.category(ch)
        if (
            (category == "Cc" and ch not in ALLOWED_CONTROLS)
            or category == "Cs"
            or ch in BIDI_CONTROLS
        ):
            found[f"U+{ord(ch):04X}"] = None
    return list(found)

"""Detectors for the facts a pool can require before it acts (Pool.required_fields)."""

import re

# Order references as customers write them: "#A-10293", "order 55812", "order no. AB-1234".
FIELD_PATTERNS: dict[str, re.Pattern[str]] = {
    "order_number": re.compile(
        r"#\s?[A-Z]{0,4}-?\d{3,}[A-Z0-9-]*"
        r"|\border\s*(?:no\.?|nr\.?|number|num|id|ref(?:erence)?|#)?\s*[:#]?\s*[A-Z]{0,4}-?\d{4,}",
        re.IGNORECASE,
    ),
    "email": re.compile(r"\[EMAIL\]|[\w.+-]+@[\w-]+\.[\w.-]+"),
    "account_id": re.compile(
        r"\b(?:account|acct|customer)\s*(?:no\.?|number|id|#)?\s*[:#]?\s*\w*\d{3,}", re.I
    ),
}


def fields_missing(
    *, required: list[str], text: str, reported_missing: list[str] | None = None
) -> list[str]:
    """Required fields absent from `text`.

    Fields with a detector are checked against the text; others count as missing only when the
    LLM said so (`reported_missing`), since nothing else can tell.
    """
    reported = set(reported_missing or [])
    missing = []
    for name in required:
        pattern = FIELD_PATTERNS.get(name)
        if pattern is not None:
            if not pattern.search(text):
                missing.append(name)
        elif name in reported:
            missing.append(name)
    return missing


def field_label(name: str) -> str:
    """`order_number` → `order number`."""
    return name.replace("_", " ")


# "talk to a person", "speak with a human", "real agent please", "live agent"
HUMAN_REQUEST = re.compile(
    r"\b(?:talk|speak|chat)\s+(?:to|with)\s+(?:a\s+|an\s+|some\s*one\s*|your\s+)?"
    r"(?:real\s+|live\s+|actual\s+)?(?:human|person|agent|representative|operator|someone|people)\b"
    r"|\b(?:real|live|human)\s+(?:agent|person|human|support)\b",
    re.IGNORECASE,
)


def human_requested_in(text: str) -> bool:
    """Whether the customer asks for a person in so many words."""
    return bool(HUMAN_REQUEST.search(text))

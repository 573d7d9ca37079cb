"""PII redaction: emails, IBANs, cards and phone numbers replaced by placeholders."""

import re
import unicodedata
from typing import Literal

# What a placeholder stands for: [EMAIL], [IBAN], [CARD], [PHONE].
RedactionKind = Literal["email", "iban", "card", "phone"]

# Order matters: emails first (they may contain digits), then IBANs (their digits would look
# like cards or phones), then cards (long digit runs), then phones.

_AT = r"(?:@|\s?[\[({<]\s?at\s?[\])}>]\s?)"
_DOT = r"(?:\.|\s?[\[({<]\s?dot\s?[\])}>]\s?)"
_EMAIL = re.compile(
    rf"(?<![\w.%+-])[\w%+-](?:[\w.%+-]*[\w%+-])?{_AT}[\w-]+(?:{_DOT}[\w-]+)*{_DOT}[^\W\d_]{{2,}}\b",
    re.IGNORECASE,
)

# IBAN lengths by country (SWIFT IBAN registry). Only these countries are recognised: with an
# exact length a grouped IBAN can be told apart from the words or numbers that follow it.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip
_IBAN_START = re.compile(r"\b([A-Za-z]{2})[0-9]{2}(?=\s?[A-Za-z0-9])")

# Digit runs: groups of digits joined by single spaces or dashes, not glued to a word, an amount,
# a path or an id ("#A-10293", "$1,299.00", "v2.14.0").
# Not preceded by a digit and punctuation (times, decimals, dates) nor by a letter and "-", "/"
# or "." (ids such as INV-2291, paths, "no.123"); a letter and ":" is fine ("card:4111...").
_NOT_AFTER = r"(?<![\w#@$€£¥+])(?<!\d[.,/:-])(?<![^\W\d_][-/.])"
_DIGIT_RUN = re.compile(_NOT_AFTER + r"\d+(?:[ -]\d+)*(?!\w|[.,/:]\d)")
_PHONE_CANDIDATE = re.compile(
    _NOT_AFTER + r"(?:\+\s?|\(\+)?\(?\d(?:\d|[ .-]?\(\d|\)[ .-]?\d|[ .-]\d)*"
    r"(?!\w|[.,/:]\d)"
)
_PHONE_WORDS = re.compile(
    r"\b(?:phone|tel|telephone|call|calling|ring|mobile|cell|cellphone|whatsapp|sms|text me"
    r"|reach me|fax|landline|hotline|number|contact)\b",
    re.IGNORECASE,
)
# A reference label right before a number ("order 12345678", "invoice no. 0012345678") means the
# number is an identifier the pools need, not a phone (or, for 13-19 digits, a card).
_REFERENCE_BEFORE = re.compile(
    r"\b(?:order|orders|purchase|invoice|ticket|case|ref|reference|tracking|shipment|parcel"
    r"|confirmation|booking|reservation|transaction|receipt|po|sku|serial|sn|s/n|imei|iccid"
    r"|licen[cs]e|account|acct|customer|member|membership|policy|claim|contract|item|product"
    r"|model|part|id|version|build|release|ver|v"
    # Misspelt labels seen in real chat ("ordedr", "puchase", "theorder") count as well.
    r"|\w*(?:orde|ordr|purch|puch|urchas|invoic)\w*)"
    r"[\s.:#-]*(?:(?:number|no|nr|num|n°|#|id|code|ref)\b[\s.:#-]*)*(?:(?:is|was|=)\s*)?[\s:#-]*$",
    re.IGNORECASE,
)
_MONEY_BEFORE = re.compile(r"(?:[$€£¥₹]|\b(?:usd|eur|gbp|chf|cad|aud|jpy|inr))\s*$", re.I)
_MONEY_AFTER = re.compile(
    r"^\s*(?:[$€£¥₹]|(?:usd|eur|gbp|chf|cad|aud|jpy|inr|euros?|dollars?)\b)", re.I
)
_DATE = re.compile(r"\d{4}[-. ]\d{1,2}[-. ]\d{1,2}|\d{1,2}[-. ]\d{1,2}[-. ]\d{2,4}")
_YEAR_RANGE = re.compile(r"(?:19|20)\d{2}\s?-\s?(?:19|20)\d{2}")
_NANP = re.compile(r"(?:1[ .-]?)?(?:\(\s?[2-9]\d{2}\s?\)\s?|[2-9]\d{2}[ .-]?)[2-9]\d{2}[ .-]?\d{4}")


def pii_redact(text: str) -> tuple[str, dict[RedactionKind, int]]:
    """Replace emails, IBANs, Luhn-valid card numbers and phone numbers with placeholders."""
    text, emails = _EMAIL.subn("[EMAIL]", text)
    # An IBAN-shaped string that fails its checksum is kept whole, not mistaken for a card or
    # phone; a card's digits are not read again as a phone.
    spans: list[tuple[int, int, RedactionKind | None]] = []  # (start, end, kind); None keeps it
    found: list[tuple[int, int, RedactionKind | None]] = [
        (s, e, "iban" if valid else None) for s, e, valid in _iban_spans(text)
    ]
    found += [(s, e, "card") for s, e in _card_spans(text)]
    found += [(s, e, "phone") for s, e in _phone_spans(text)]
    for start, end, kind in found:
        if not any(start < e and s < end for s, e, _ in spans):
            spans.append((start, end, kind))
    counts: dict[RedactionKind, int] = {"email": emails}
    for span_kind in _SPAN_KINDS:
        counts[span_kind] = sum(k == span_kind for *_, k in spans)
    parts: list[str] = []
    last = 0
    for start, end, kind in sorted(spans, key=lambda span: span[:2]):
        if kind:
            parts += [text[last:start], f"[{kind.upper()}]"]
            last = end
    parts.append(text[last:])
    return "".join(parts), {kind: n for kind, n in counts.items() if n}


_SPAN_KINDS: tuple[RedactionKind, ...] = ("iban", "card", "phone")


def _iban_valid(iban: str) -> bool:
    """ISO 13616 check: move the first four characters to the end; mod 97 of the number is 1."""
    if not iban.isascii() or not iban.isalnum():
        return False
    return int("".join(str(int(ch, 36)) for ch in iban[4:] + iban[:4])) % 97 == 1


def _iban_spans(text: str) -> list[tuple[int, int, bool]]:
    """IBAN-shaped spans (known country, exact length) and whether their checksum holds."""
    spans: list[tuple[int, int, bool]] = []
    pos = 0
    while match := _IBAN_START.search(text, pos):
        pos = match.start() + 1
        length = _IBAN_LENGTHS.get(match.group(1).upper())
        if length is None:
            continue
        chars, i = list(match.group(0)), match.end()
        while len(chars) < length and i < len(text):
            ch = text[i]
            if ch.isascii() and ch.isalnum():
                chars.append(ch)
            elif not (ch == " " and i + 1 < len(text) and text[i + 1].isalnum()):
                break
            i += 1
        if len(chars) != length or (i < len(text) and (text[i].isalnum() or text[i] == "_")):
            continue
        spans.append((match.start(), i, _iban_valid("".join(chars).upper())))
        pos = i
    return spans


_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _luhn_valid(digits: str) -> bool:
    values = [int(ch) for ch in reversed(digits)]
    return (sum(values[0::2]) + sum(_LUHN_DOUBLED[v] for v in values[1::2])) % 10 == 0


def _card_spans(text: str) -> list[tuple[int, int]]:
    """Luhn-valid 13-19 digit runs, aligned to the customer's own grouping."""
    spans: list[tuple[int, int]] = []
    for run in _DIGIT_RUN.finditer(text):
        groups = [
            (m.start() + run.start(), m.end() + run.start())
            for m in re.finditer(r"\d+", run.group())
        ]
        total = sum(end - start for start, end in groups)
        if total < 13 or _REFERENCE_BEFORE.search(text[max(0, run.start() - 40) : run.start()]):
            continue
        # A card may be followed by more digits ("4111 1111 1111 1111 12/27"): try every
        # contiguous range of groups holding 13-19 digits, longest first, so the card is found.
        ranges: list[tuple[int, int, str]] = []  # (start, end, digits)
        for i, (start, _) in enumerate(groups):
            digits = ""
            for s, e in groups[i:]:
                digits += text[s:e]
                if len(digits) > 19:
                    break
                if len(digits) >= 13:
                    ranges.append((start, e, digits))
        ranges.sort(key=lambda r: (-len(r[2]), r[0]))
        taken: list[tuple[int, int]] = []
        for start, end, digits in ranges:
            if _luhn_valid(digits) and not any(s < end and start < e for s, e in taken):
                taken.append((start, end))
        spans += taken
    return spans


def _phone_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for match in _PHONE_CANDIDATE.finditer(text):
        start, candidate = match.start(), match.group()
        if candidate.startswith("(") and candidate.count("(") > candidate.count(")"):
            start, candidate = start + 1, candidate[1:]
        if candidate.count("(") != candidate.count(")"):
            continue
        before = text[max(0, start - 40) : start]
        after = text[start + len(candidate) : start + len(candidate) + 12]
        if _phone_like(candidate, before, after):
            spans.append((start, start + len(candidate)))
    return spans


def _phone_like(candidate: str, before: str, after: str) -> bool:
    """Whether a digit candidate is a phone number, judged by its shape and the words before it."""
    # Read Arabic-Indic and other decimal digits as ASCII so the shapes below apply to them too.
    candidate = "".join(str(unicodedata.decimal(ch, ch)) for ch in candidate)
    digits = sum(ch.isdigit() for ch in candidate)
    if digits < 7:
        return False
    if candidate.startswith(("+", "(+")):
        return digits <= 15  # E.164: country code and subscriber number, at most 15 digits
    groups = [g for g in re.split(r"[ .()-]+", candidate) if g]
    dotted = "." in candidate
    if (
        _DATE.fullmatch(candidate)
        or _YEAR_RANGE.fullmatch(candidate)
        or (dotted and len(groups) == 2)  # a decimal
        or (dotted and any(len(g) == 1 for g in groups))  # a version: 10.0.19045.2965
        or (dotted and len(groups) == 4 and all(len(g) <= 3 for g in groups))  # an IPv4 address
        or _MONEY_BEFORE.search(before)
        or _MONEY_AFTER.search(after)
        or _REFERENCE_BEFORE.search(before)
    ):
        return False
    if candidate.startswith(("00", "(00")):
        return 9 <= digits <= 17  # international call prefix + E.164
    if candidate.startswith(("0", "(0")):
        return 9 <= digits <= 13  # national trunk prefix: 020 7946 0958, 06 12 34 56 78
    if _NANP.fullmatch(candidate):
        return True  # North American: (415) 555-2671, 415.555.2671, 1-800-555-0199
    if digits > 15:
        return False
    if _PHONE_WORDS.search(before):
        return True  # "call me on 5552671"
    if len(groups) >= 3 and all(2 <= len(g) <= 4 for g in groups):
        return True  # grouped like a phone: 12 34 56 78, 412 34 567
    return len(groups) == 2 and [len(g) for g in groups] == [3, 4] and candidate[3] != " "

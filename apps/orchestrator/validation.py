"""Tier 1 of the routing pipeline: refuse unusable text, minimise personal data, flag injection.

Customer text is untrusted. `input_validate` is the only door from a stored message to the
later tiers: it refuses what cannot be processed, returns the text with personal data replaced
by placeholders (no model, cache or log downstream should see anything else), and names the
prompt-injection patterns it found. Everything here is pure: no database, no settings, no I/O.

Character policy (why some characters are refused and others stripped):

* Refused (`ControlCharacters`): C0/C1 control characters other than tab, newline and carriage
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

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote

from apps.core.errors import EmptyText, InvalidText, TextTooLong, ValidationFailed
from apps.core.text import refused_characters

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
    minimised: str  # the text with personal data replaced by [EMAIL], [PHONE], [CARD], [IBAN]
    redactions: dict[str, int]  # kind ("email", "phone", "card", "iban") -> count; only kinds found
    injection_signals: list[str]  # names of the injection patterns that matched; empty if none

    @property
    def injection_suspected(self) -> bool:
        """Whether any injection pattern matched."""
        return bool(self.injection_signals)


# --------------------------------------------------------------------------------------------
# Characters

_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")  # Hangul fillers render as nothing
_TAG_FIRST, _TAG_LAST = 0xE0000, 0xE007F
_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029]")


def _is_variation_selector(ch: str) -> bool:
    cp = ord(ch)
    return 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF


def _is_invisible(ch: str) -> bool:
    return unicodedata.category(ch) == "Cf" or _is_variation_selector(ch) or ch in _FILLERS


def _strip_invisible(text: str) -> str:
    if text.isascii():
        return text
    return "".join(ch for ch in text if not _is_invisible(ch)).replace("\u2800", " ")


def _hidden_payloads(text: str) -> list[str]:
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
    normalised = unicodedata.normalize("NFKC", _strip_invisible(text))
    normalised = _LINE_BREAKS.sub("\n", normalised).strip()
    if not normalised:
        raise EmptyInput()
    if len(normalised) > max_chars:  # NFKC can expand a character into many (e.g. U+FDFA)
        raise InputTooLong(
            f"Messages are limited to {max_chars:,} characters.",
            extra={"limit": max_chars, "length": len(normalised)},
        )
    minimised, redactions = pii_redact(normalised)
    return ValidatedInput(
        minimised=minimised, redactions=redactions, injection_signals=injection_detect(text)
    )


def text_normalise(text: str) -> str:
    """Reduce text to a cache-key form: NFKC, casefolded, single-spaced, no edge punctuation."""
    folded = unicodedata.normalize("NFKC", _strip_invisible(text))
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


# --------------------------------------------------------------------------------------------
# PII redaction
#
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


def pii_redact(text: str) -> tuple[str, dict[str, int]]:
    """Replace emails, IBANs, Luhn-valid card numbers and phone numbers with placeholders."""
    text, emails = _EMAIL.subn("[EMAIL]", text)
    # An IBAN-shaped string that fails its checksum is kept whole, not mistaken for a card or
    # phone; a card's digits are not read again as a phone.
    spans: list[tuple[int, int, str]] = []  # (start, end, kind); kind "" keeps the text
    found = [(s, e, "iban" if valid else "") for s, e, valid in _iban_spans(text)]
    found += [(s, e, "card") for s, e in _card_spans(text)]
    found += [(s, e, "phone") for s, e in _phone_spans(text)]
    for start, end, kind in found:
        if not any(start < e and s < end for s, e, _ in spans):
            spans.append((start, end, kind))
    counts = {"email": emails} | {
        kind: sum(k == kind for *_, k in spans) for kind in ("iban", "card", "phone")
    }
    parts: list[str] = []
    last = 0
    for start, end, kind in sorted(spans):
        if kind:
            parts += [text[last:start], f"[{kind.upper()}]"]
            last = end
    parts.append(text[last:])
    return "".join(parts), {kind: n for kind, n in counts.items() if n}


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


# --------------------------------------------------------------------------------------------
# Prompt-injection detection
#
# Heuristics, not a lookup: each signal is a few patterns that need instruction-like context
# (an imperative aimed at the assistant, a reference to its instructions or to our routing
# fields), so that "please ignore my previous email" or "route 66 store" pass. The patterns
# run over a view of the text that undoes cheap obfuscation: invisible characters, NFKC,
# case, accents, look-alike Cyrillic/Greek letters, leetspeak inside words and s p a c e d
# letters. A match is a signal for the pipeline to weigh, never a refusal.

SIGNAL_NAMES = (
    "ignore_instructions",
    "role_override",
    "prompt_exfiltration",
    "routing_manipulation",
    "delimiter_injection",
    "encoding_tricks",
)

_CONFUSABLES = str.maketrans(
    "аеёіїјкорсухѕԁԛԝһɡαεικνορτυχ",
    "aeeiijkopcyxsdqwhgaeiknoptux",
)
_LEET = str.maketrans("013457@$", "oieastas")
_LEET_TOKEN = re.compile(r"(?<![\w@$])(?=[\w@$]*[a-z])(?=[\w@$]*[013457@$])[\w@$]+")  # 1gn0r3
_QUOTES = {ord(ch): "'" for ch in "\u2018\u2019\u201a\u201b\u00b4"} | {
    ord(ch): '"' for ch in "\u201c\u201d\u201e\u201f\u00ab\u00bb"
}
_SPACED = re.compile(r"(?<![\w])[a-z](?:(?:[ .\-_*|/+]|  +)[a-z](?![a-z])){3,}")
# The words s p a c e d-out letters are split back into when they were typed without gaps.
_VOCABULARY = frozenset({
    "ignore", "disregard", "forget", "all", "any", "every", "your", "the", "previous", "prior",
    "above", "earlier", "instructions", "instruction", "rules", "prompt", "system", "you",
    "are", "now", "reveal", "show", "print", "me", "route", "this", "to", "set", "confidence",
    "pool", "classify", "as", "act", "developer", "mode", "jailbreak", "new", "and", "refund",
    "billing", "technical", "everything", "repeat", "tell", "what", "were", "told", "respond",
    "with", "json", "pretend", "a", "an", "i", "is", "of", "be", "in", "my", "ticket",
    "message", "output", "initial", "secret", "hidden", "admin", "override",
})  # fmt: skip


def _segment(letters: str) -> str | None:
    """Split a run of letters into vocabulary words, or None when it does not split cleanly."""
    if len(letters) > 400:
        return None
    word_start: list[int | None] = [0] + [None] * len(letters)  # where the last word begins
    for end in range(1, len(letters) + 1):
        for start in range(max(0, end - 12), end):
            if word_start[start] is not None and letters[start:end] in _VOCABULARY:
                word_start[end] = start
                break
    words: list[str] = []
    end = len(letters)
    while end:
        begin = word_start[end]
        if begin is None:
            return None
        words.append(letters[begin:end])
        end = begin
    return " ".join(reversed(words))


def _unspace(match: re.Match[str]) -> str:
    words = [re.sub(r"[ .\-_*|/+]", "", w) for w in re.split(r"  +", match.group())]
    if len(words) == 1:
        return _segment(words[0]) or words[0]
    return " ".join(words)


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize(
        "NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    )


def _views(text: str) -> tuple[str, tuple[str, ...]]:
    """The text as lines (casefolded, plain quotes) and flat variants (de-obfuscated, one line)."""
    plain = unicodedata.normalize("NFKC", _strip_invisible(text))
    lines = _strip_accents(plain.casefold()).translate(_QUOTES).translate(_CONFUSABLES)
    flat = re.sub(r"[*~]+", "", lines)
    flat = re.sub(r"(?<=[a-z])[._](?=[a-z])", " ", flat)  # ignore_all, IGNORE.ALL
    flats = [flat]
    if "1" in flat:  # "1" stands for "i" (1gnore) as often as for "l" (ru1es)
        flats.append(flat.replace("1", "l"))
    return lines, tuple(
        " ".join(
            _SPACED.sub(_unspace, _LEET_TOKEN.sub(lambda m: m.group().translate(_LEET), f)).split()
        )
        for f in flats
    )


_W = r"(?:[\w'-]+\s+)"  # one filler word
_NOT_MINE = (
    r"(?:(?!(?:my|our|me|mine|i|we)\b)[\w'-]+\s+)"  # a filler word that is not the customer's own
)

_IGNORE_VERB = (
    r"(?:ignore|ignoring|disregard|disregarding|forget|forgetting|bypass|override|overlook"
    r"|discard|abandon|drop|set aside|throw out|do not follow|don'?t follow|stop following"
    r"|no longer follow|stop obeying|cancel|erase|delete|skip)"
)
_IGNORE_QUAL = (
    r"(?:previous|previously|prior|above|earlier|preceding|former|original|initial|old|existing"
    r"|system|all|any|every|your)"
)
_IGNORE_NOUN = (
    r"(?:instructions?|rules?|prompts?|directives?|guidelines?|guardrails?|constraints?"
    r"|programming|commands|restrictions?|filters?|training|context|system prompt|safety rules)"
)
_NOT_ABOUT_MINE = (
    r"(?!\s+(?:that\s+|which\s+)?(?:i|we)\b)"
    r"(?!\s+(?:about|regarding|concerning|re|for|on)\s+(?:my|our|the|this)\s+(?:order|delivery"
    r"|shipping|shipment|address|parcel|package|account|booking|payment|subscription|invoice"
    r"|return|refund)\b)"
)
_ROLE_NOUN = (
    r"(?:assistant|ai|bot|chatbot|model|llm|agent|router|classifier|system|persona|character"
    r"|hacker|admin|administrator|developer|expert|translator|terminal|interpreter|version|gpt"
    r"|\w+gpt|dan|jailbreak|jailbroken)"
)
_EXF_VERB = (
    r"(?:reveal|print|show|display|output|repeat|tell|give|share|leak|dump|write out|write down"
    r"|spell out|recite|paste|copy|echo|expose|disclose|list|send|provide|return|read back"
    r"|read out|summari[sz]e|translate|what(?:'s| is| are| was| were))"
)
_EXF_OBJECT = (
    r"(?:system (?:prompt|message|instructions?)|(?:initial|original|hidden|secret|internal"
    r"|developer|confidential|full|exact|complete) (?:system )?(?:prompt|instructions|rules"
    r"|message)"
    r"|pre-?prompt|meta-?prompt"
    r"|your prompt(?!\s+(?:reply|response|answer|attention|help|action|assistance|service"
    r"|payment|refund|delivery|feedback|support))"
    r"|your (?:instructions|rules|guidelines|directives|configuration|prompt)\s+(?:verbatim"
    r"|word for word|in full|exactly|above|you (?:were|have been) given)"
    r"|(?:the )?(?:text|words|instructions|message|messages|everything|content) (?:above"
    r"|before this)"
    r"|your (?:first|initial|opening) (?:message|instructions|lines?)"
    r"|(?:the )?above (?:prompt|instructions|rules|system message)"
    r"|instructions you (?:were|have been) given|what you were told"
    r"|the (?:beginning|start) of (?:this|the|your) (?:conversation|prompt|context))"
)
_TURN_START = r"(?:(?m:^)\s*|[.!?]\s+)"  # a line start or a sentence start
_IMPERATIVE_START = (
    r"(?:^|[.!?;:\n]\s*|\b(?:please|now|only|always|just|you (?:must|should|will|shall)|"
    r"i (?:want|need) you to)\s+)"
)

_PATTERNS: dict[str, tuple[str, ...]] = {
    "ignore_instructions": (
        rf"\b{_IGNORE_VERB}\s+{_NOT_MINE}{{0,3}}?{_IGNORE_QUAL}\s+"
        rf"{_NOT_MINE}{{0,3}}?{_IGNORE_NOUN}\b{_NOT_ABOUT_MINE}",
        rf"\b{_IGNORE_VERB}\s+(?:the|all|any|your)\s+{_W}{{0,2}}?{_IGNORE_NOUN}\s+(?:above"
        r"|before this|you (?:were|have been) given|given to you|from (?:your|the) (?:developers?"
        r"|creators?|system|operators?))",
        rf"\b{_IGNORE_VERB}\s+(?:about\s+)?(?:all\s+)?(?:of\s+)?(?:everything|anything|all"
        r"|it all)\s+(?:you(?:'ve| have)? (?:been )?(?:told|given|read|learned|learnt|know)|above"
        r"|before this|(?:that )?(?:came|comes|was said|you were told) (?:before|above)|prior"
        r"|previously|so far|until now)",
        r"\b(?:all |your |the )?(?:previous |prior |earlier |above |system "
        r"|original )+(?:instructions|rules|prompts?|directives) (?:are|were|have been"
        r"|is) (?:now )?(?:void|null|cancell?ed|revoked|obsolete|overridden|replaced|invalid"
        r"|no longer (?:valid|active|apply|relevant))",
        # French, German, Spanish
        r"\b(?:ignore[rz]?|oublie[rz]?|ne (?:tiens|tenez) (?:pas"
        r"|plus) compte d[e'])\s*(?:[\w'-]+\s+){0,3}?(?:instructions|consignes|regles"
        r"|directives|indications)\s+(?:precedentes|anterieures|ci-dessus|initiales|d'avant"
        r"|du systeme|systeme)",
        r"\b(?:ignore[rz]?|oublie[rz]?|ne (?:tiens|tenez) (?:pas"
        r"|plus) compte d[e'])\s*(?:toutes\s+)?(?:tes|vos)\s+(?:\w+\s+)?(?:instructions|consignes"
        r"|regles|directives)",
        r"\boublie[rz]? tout ce (?:qu'on t'a dit|que tu sais|qui precede|que l'on t'a dit"
        r"|qu'on vous a dit)",
        r"\b(?:ignoriere|ignorier|ignorieren sie|vergiss|vergessen sie|missachte"
        r"|missachten sie)\s+(?:\w+\s+){0,2}?(?:alle|deine|ihre|die vorherigen|vorherigen"
        r"|bisherigen|obigen|vorigen|vorangegangenen|fruheren"
        r"|system)\s+(?:\w+\s+){0,2}?(?:anweisungen|instruktionen|regeln|vorgaben|befehle"
        r"|richtlinien|anordnungen|systemanweisungen)",
        r"\bvergiss alles,? (?:was|bisher|vorher|oben)",
        r"\b(?:ignora|ignore|ignorad|ignoren|olvida|olvide|olvidate de|olvidad"
        r"|haz caso omiso (?:de|a)|no hagas caso (?:de|a)|omite"
        r"|descarta)\s+(?:\w+\s+){0,2}?(?:(?:todas? )?(?:tus|sus)"
        r"|todas las)\s+(?:\w+\s+)?(?:instrucciones|reglas|indicaciones|directrices|ordenes"
        r"|normas)",
        r"\b(?:ignora|ignore|ignorad|ignoren|olvida|olvide|olvidate de|olvidad"
        r"|haz caso omiso (?:de|a)|no hagas caso (?:de|a)|omite"
        r"|descarta)\s+(?:\w+\s+){0,2}?(?:instrucciones|reglas|indicaciones|directrices|ordenes"
        r"|normas)\s+(?:anteriores|previas|de arriba|del sistema|iniciales|originales)",
        r"\bolvida (?:todo lo (?:que|anterior)|lo anterior)",
    ),
    "role_override": (
        r"\byou(?:'re| are) (?:now|no longer|from now on|henceforth)\s+(?:an? |the "
        r"|my )(?!(?:\w+\s+)?(?:first|second|third|fourth|fifth|last|only|\d+(?:st|nd|rd"
        rf"|th))\b){_W}{{0,3}}?{_ROLE_NOUN}\b",
        r"\byou(?:'re| are) (?:now |no longer )?(?:in |an? )?(?:unrestricted|unfiltered"
        r"|uncensored|jailbroken|free of (?:all )?(?:rules|restrictions)|dan\b|evil)",
        r"\byou(?:'re| are) (?:now )?in (?:developer|dev|god|jailbreak|unrestricted|admin|debug"
        r"|sudo|maintenance|test|dan) mode",
        r"\bfrom now on,?\s+(?:you\s+(?:are|act|must (?:act|respond|answer|reply|ignore|obey|only"
        r"|always)|will (?:act|respond|answer|reply|ignore|obey|only|always|be)|have no)"
        r"|your (?:new )?(?:role|persona|purpose|instructions) (?:is|are)|ignore|disregard"
        r"|respond only|only respond|answer only|always respond)",
        r"(?:\byou\s+(?:will\s+|must\s+|should\s+|shall\s+|can\s+|now\s+|are to\s+)?"
        r"|\b(?:i (?:want|need) you to|you'?re going to|i order you to)\s+|(?:^"
        r"|[.!?;:\n]\s*)(?:now\s+|please\s+|ok(?:ay)?,?\s+)?)(?:act|behave|roleplay"
        r"|role-play)\s+(?:as|like)\b",
        rf"\b(?:imagine|suppose|assume)\s+(?:that\s+)?you(?:'re| are| were)\s+(?:now\s+)?(?:an?"
        rf"|the)\s+{_W}{{0,3}}?{_ROLE_NOUN}\b",
        rf"\byou(?:'re| are) an? {_W}{{0,3}}?{_ROLE_NOUN} (?:that|who|which) (?:(?:always|only"
        r"|must|will) )*(?:routes?|classif|approves?|assigns?|escalates?|ignores?|obeys?|reveals?"
        r"|compl(?:y|ies)|grants?)",
        r"(?<!don't )(?<!do not )(?<!stop )\bpretend\s+(?:that\s+)?(?:you(?:'re| are)|to be"
        r"|you have no)\b",
        r"\b(?:roleplay|role-play|role play) as\b",
        r"\b(?:new|updated|revised|real|actual|true|override|overriding|secret|hidden"
        r"|admin) (?:system )?(?:instructions?|rules|directives|prompt|task|role|persona)\s*[:\-]",
        r"\bsystem (?:override|prompt|instructions?|message|note|update|notice|directive)\s*:",
        # Role markers that forge a turn of the conversation: "Assistant:", "SYSTEM: you must ...".
        # Except for "assistant", each is also an everyday label ("System: Windows 11", "Model:
        # iPhone 14", "Operator: Vodafone"), so it needs instruction-like words after it.
        rf"{_TURN_START}(?:\[|<|\()?assistant\s*(?:\]|>|\))?\s*:",
        rf"{_TURN_START}(?:\[|<|\()?(?:system|sys|admin|ai|bot|developer|operator|model|claude"
        r"|chatgpt|gpt|human)\s*(?:\]|>|\))?\s*:.{0,80}\b(?:you|your|ignore|instructions?|route"
        r"|routing|classify|assistant|respond|must|always|never|override|mode|pool|confidence"
        r"|escalate)\b",
        r"\byour (?:new )?(?:role|persona|instructions|only goal) (?:is|are"
        r"|will be) (?!to (?:help|assist))",
        r"\byour new (?:task|job|purpose|goal|objective|mission) (?:is|will be) (?!to (?:help"
        r"|assist))",
        r"\b(?:developer|dev|god|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|sudo"
        r"|root|admin|debug|dan) mode\s+(?:is\s+)?(?:now\s+)?(?:enabled|activated|on|engaged"
        r"|unlocked)\b",
        r"\b(?:enable|activate|enter|switch (?:to|into)|turn on|unlock)\s+(?:the\s+)?(?:god"
        r"|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|sudo|dan) mode",
        r"\b(?:enable|activate|enter|switch (?:to|into))\s+(?:your\s+)?developer mode\s*(?:and|,"
        r"|then|now|so)\s+(?:\w+\s+){0,2}?(?:ignore|answer|respond|tell|reveal|route|classify"
        r"|disable|bypass|do anything)",
        r"\bdeveloper mode\b.{0,60}\b(?:no (?:rules|restrictions|filters|limits)|unrestricted"
        r"|uncensored|ignore (?:all|your|the)|bypass)",
        r"\bjailbreak (?:mode|prompt)\b|\b(?:act as|become|you(?:'re| are)) an? (?:jailbroken"
        r"|unrestricted|unfiltered|uncensored) (?:ai|assistant|model|bot|version)",
        r"\bstands for \"?do anything now|\(do anything now\)",
        r"\byou(?:'re| are) (?:not|no longer) (?:bound|restricted|limited|constrained) by",
        r"\byou have no (?:rules|restrictions|guidelines|limitations|filters|ethical)",
        r"\b(?:respond|answer|reply|act|operate|speak"
        r"|talk)\s+(?:freely\s+)?without (?:any )?(?:restrictions|filters|rules|limitations"
        r"|guidelines|censorship|ethical)",
        r"\bsudo\s+(?:mode|override|ignore|route|set|rm|su)\b",
        r"\b(?:admin|administrator|developer|root|system) (?:override|access"
        r"|privileges?) (?:granted|enabled|activated|code)\b",
        # French, German, Spanish
        r"\b(?:tu es|vous etes) (?:maintenant|desormais|a present|dorenavant)\s+(?:un|une|le|la"
        r"|mon|ma|en mode)\s+(?:[\w-]+\s+){0,2}?(?:assistant|ia|bot|robot|modele|agent"
        r"|administrateur|developpeur|systeme|pirate|dan|sans restrictions?)",
        r"\b(?:a partir de maintenant|desormais|dorenavant),? (?:tu (?:es|dois|vas|ignores"
        r"|reponds)|vous (?:etes|devez|allez|ignorez|repondez))",
        r"\b(?:agis|agissez) (?:comme|en tant que) (?:un|une|si)\b|\bfais comme si tu etais"
        r"|\bjoue le role d",
        r"\b(?:du bist|sie sind) (?:jetzt|ab sofort|nun|ab jetzt)\s+(?:ein|eine|der|die|das|mein"
        r"|im)\s+(?:[\w-]+\s+){0,2}?(?:assistent|ki|bot|modell|agent|administrator|entwickler"
        r"|system|hacker|dan|modus)",
        r"\bab (?:jetzt|sofort) (?:bist du|antwortest du|ignorierst du|gibt es keine)",
        r"\btu so,? als (?:ob|warst)|\bverhalte dich (?:wie|als)\b|\bspiele die rolle",
        r"\b(?:ahora|a partir de ahora|desde ahora)\s*,?\s*(?:eres|seras|actuas|actua|responde"
        r"|responderas|ignora)\b",
        r"\b(?:actua|actue) como (?:un|una|si)\b|\bfinge (?:que eres|ser)\b|\bhaz de cuenta que",
    ),
    "prompt_exfiltration": (
        rf"\b{_EXF_VERB}\s+(?:me\s+|us\s+)?(?:(?:the|your|all|of|exact|full|entire|complete|whole"
        rf"|verbatim|any|back)\s+)*{_EXF_OBJECT}",
        r"\byour (?:system prompt|system instructions|hidden instructions|secret instructions"
        r"|initial instructions|original instructions|internal instructions)",
        r"\bwhat (?:were|have) you (?:been )?(?:told|instructed|programmed|prompted"
        r"|configured)(?!\s+(?:about|by|regarding|re|concerning|when|on|that my|from"
        r"|to do with)\b)",
        r"\bwhat (?:instructions|rules|directives) (?:were|have) you (?:been )?given",
        r"\bhow (?:were|are|have) you (?:been )?(?:programmed|prompted|configured|instructed)",
        r"\b(?:starting|beginning|that starts|that begins) with ['\"]?you are\b",
        r"\b(?:first|last|opening|next) (?:line|sentence|word|paragraph|part)s? of (?:your"
        r" (?:instructions|prompt|rules|system prompt|system message)|the (?:system prompt"
        r"|system message|prompt))",
        r"\b(?:repeat|print|output|copy)\s+(?:everything|all|the text|the words)\s+(?:above"
        r"|before|prior to) (?:this|my)",
        # French, German, Spanish
        r"\b(?:montre|affiche|revele|donne|dis|repete|ecris|copie|montrez|affichez|revelez|donnez"
        r"|dites|repetez)[-\s]*(?:moi|nous)?\s+(?:\w+\s+){0,2}?(?:prompt|message|instructions"
        r"|consignes)\s+(?:systeme|du systeme|initiales?|cachees?|secretes?|d'origine|originales?)",
        r"\b(?:ton|votre) prompt\b",
        r"\b(?:zeig|zeige|gib|nenne|verrate|wiederhole|schreib"
        r"|drucke)\s+(?:mir\s+)?(?:\w+\s+){0,2}?(?:system ?prompt|systemanweisungen"
        r"|systemnachricht|(?:urspr|anfang|geheim|versteckt|intern)\w*\s+(?:anweisungen|prompt"
        r"|instruktionen))",
        r"\b(?:deinen|ihren) (?:system)?prompt\b",
        r"\b(?:muestra|muestrame|revela|revelame|dime|ensename|imprime|repite|escribe"
        r"|dame)\s+(?:\w+\s+){0,2}?(?:prompt|mensaje|instrucciones)\s+(?:del sistema|de sistema"
        r"|iniciales?|ocult[oa]s?|secret[oa]s?|originales?)",
        r"\btu prompt\b",
    ),
    "routing_manipulation": (
        r"\broute\s+(?:this|it|that|the (?:ticket|message|request|case|conversation|chat|query)"
        r"|this (?:ticket|message|request|case|conversation|chat|query))\s+(?:directly\s+"
        r"|immediately\s+|straight\s+)?(?:to|into|as)\b",
        r"\b(?:send|assign|escalate|forward|transfer|move|put|place|route)\s+(?:this|it|me"
        r"|the ticket|this ticket|this message)\s+(?:directly\s+)?(?:to|in"
        r"|into)\s+(?:the\s+)?(?:[\w-]+\s+)?pool\b",
        r"\bset\s+(?:the\s+|your\s+|its\s+)?(?:routing\s+|classification\s+)?(?:confidence"
        r"|probability|certainty|pool|label|classification|routing|tier|action"
        r"|score)\s*(?:score\s+|level\s+|value\s+)?(?:to|=|:|as|at)\s",
        r"\bconfidence\s*(?:score\s*|level\s*)?(?:[:=]|of|to|at|is)\s*(?:1(?:\.0+)?|0?\.\d+"
        r"|100\s*%|\d{2,3}\s*%|high|max(?:imum)?)(?![\w.])",
        r"\bclassify\s+(?:this|it|me|that|the \w+|this \w+)\s+(?:\w+\s+){0,2}?(?:as|under"
        r"|into)\b",
        r"\b(?:label|tag|categori[sz]e)\s+(?:this|it|the ticket|this ticket|this message"
        r"|this request)\s+(?:as|under)\b",
        r"\b(?:pool|tier|action|label)\s*[:=]\s*[\"']?[a-z]",
        r"[\"'](?:pool|confidence|action|missing_fields|tier)[\"']\s*:",
        r"\b(?:route_ticket|tool_use|tool_call|function_call|tool_calls|tool_choice)\b",
        rf"{_IMPERATIVE_START}(?:respond|reply|answer|output|return|print)\s+(?:only\s+)?(?:with"
        r"|in|as|using)\s+(?:(?:the|this|a|following|valid|raw|only)\s+)*json\b",
        r"\b(?:respond|reply|answer|output"
        r"|return)\s+(?:only\s+)?(?:with\s+)?(?:the\s+)?(?:following\s+)?json\s*:",
        r"\b(?:call|invoke|use|trigger|execute|run)\s+(?:the\s+|your\s+)?(?:\w+\s+)?(?:tool"
        r"|function)\s+(?:[\w-]+\s+)?(?:with|using|passing|and set|to route|to set)\b",
        r"\byou (?:must|should|will|have to|need to) (?:route|classify|assign) (?:this|it|me"
        r"|the ticket|this ticket)\s+(?:directly\s+)?(?:to|as|into)\b",
        r"\bthis (?:ticket|message|request|case|conversation) (?:must|should|has to|needs to"
        r"|will) be (?:routed|classified|assigned|categori[sz]ed|labell?ed) (?:to|as|into|under)\b",
        r"\b(?:skip|bypass|override|circumvent|disable)\s+(?:the\s+|your\s+"
        r"|any\s+)?(?:human\s+)?(?:review|routing|router|classifier|classification|triage"
        r"|moderation|filters?)\b",
        # French, German, Spanish
        r"\b(?:classe|classez|classifie|classifiez|achemine|acheminez|route|routez)\s+(?:ce|cette"
        r"|le|la)\s+(?:ticket|message|demande|requete|conversation)\s+(?:\w+\s+){0,2}?(?:comme"
        r"|vers|dans|en tant que)\b",
        r"\b(?:mets|mettez|fixe|fixez|regle|reglez)\s+(?:la\s+|le\s+)?(?:confiance"
        r"|niveau de confiance|score|pool)\s+(?:a|sur|au)\b",
        r"\b(?:klassifiziere|klassifizieren sie|kategorisiere|route|stufe)\s+(?:dieses|diesen"
        r"|diese|das|den|die)\s+(?:ticket|anfrage|nachricht|fall)\s+(?:\w+\s+){0,2}?(?:als"
        r"|ein)\b",
        r"\bsetze\s+(?:die\s+|den\s+)?(?:konfidenz|zuversicht|confidence|pool|score)\s+auf\b",
        r"\b(?:clasifica|clasifique|clasificad|enruta|enrute|categoriza|etiqueta)\s+(?:este|esta"
        r"|el|la)\s+(?:ticket|mensaje|solicitud|caso|consulta)\s+(?:\w+\s+){0,2}?(?:como|a|al"
        r"|en)\b",
        r"\b(?:pon|ponga|establece|fija|ajusta)\s+(?:la\s+|el\s+)?(?:confianza|nivel de confianza"
        r"|pool|puntuacion)\s+(?:en|a|al)\b",
    ),
    "delimiter_injection": (
        r"</\s*(?:customer_message|customer|message|user|user_input|input|ticket|text|query"
        r"|context|document|data|instructions?|prompt|system|human|assistant|conversation|chat"
        r"|request|content|untrusted\w*)\s*>",
        r"<\s*(?:system|assistant|developer|admin|instructions?|prompt|system_prompt|sys|im_start"
        r"|im_end|tool_use|tool_result|function_calls?|invoke|antml:\w+|human|ai"
        r"|user)\s*(?:\s[^<>]{0,60})?>",
        r"<\|[a-z_]+\|>|\[/?inst\]|<<\s*/?sys\s*>>|\[/?(?:system|assistant"
        r"|developer)(?:_message)?\]",
        r"(?m)^\s*#{1,6}\s*(?:system|assistant|developer|instructions?|new instructions"
        r"|system prompt|response)\s*:?\s*$",
        r"```[\w-]*\s*(?:system|assistant|developer|admin|user|human|instructions?"
        r"|new instructions)\s*[:\]>]",
        r"\b(?:end|close|closing|stop)\s+(?:of\s+)?(?:the\s+)?(?:customer|user"
        r"|untrusted)?\s*(?:message|input|prompt|ticket|text|data|query)\b\s*(?:[-=#*_\]>]{2,}"
        r"|[.:]?\s*(?:begin|start|new|system|assistant|now (?:follow|you)))",
        r"(?<![-=#*_])[-=#*_]{3,}\s*(?:begin\s+|start\s+)?(?:system|admin|developer|assistant"
        r"|instructions?|new instructions|system prompt)\b(?!\s+(?:log|logs|info|information"
        r"|details|requirements|specs|error|settings|version))",
    ),
    "encoding_tricks": (
        r"\b(?:translate|decode|decipher|decrypt|convert|interpret|unscramble|reverse"
        r"|read)\s+(?:the\s+following|this|the\s+text|it|the\s+message"
        r"|the\s+string)\b.{0,60}?(?:\band\b|\bthen\b|,)\s*(?:then\s+)?(?:execute|follow|obey"
        r"|run|do|perform|apply|carry out|act on|comply)",
        r"\bexecute\s+(?:the\s+)?(?:decoded|translated|following|hidden|encoded|reversed)\b",
        r"\b(?:base64|base-64|rot13|rot-13|hex|binary|morse|caesar|leetspeak"
        r"|reversed?)\b.{0,60}\b(?:execute|obey|follow (?:it|them|the (?:decoded|hidden"
        r"|encoded) (?:text|instructions?)|the instructions? (?:inside|within|in it))"
        r"|do what it says)",
        r"\b(?:traduis|traduisez|decode|decodez)\b.{0,40}\bexecute",
        r"\b(?:ubersetze|dekodiere|entschlussele)\b.{0,40}\b(?:fuhre|befolge)",
        r"\b(?:traduce|decodifica|descifra)\b.{0,40}\b(?:ejecuta|obedece|sigue)",
    ),
}

_COMPILED: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...] = tuple(
    (name, tuple(re.compile(p) for p in patterns)) for name, patterns in _PATTERNS.items()
)
# "DAN" ("do anything now") only in capitals and in a role context: Dan is also a name.
_DAN = re.compile(
    r"\b(?i:you are|you're|as|be|become|called|named|enable|activate) DAN\b"
    r"|\bDAN (?i:mode|prompt|jailbreak)\b"
)
_BASE64 = re.compile(r"(?<![\w+/=-])[A-Za-z0-9+/_-]{24,}={0,2}(?![\w+/=-])")
_HEX = re.compile(
    r"(?<![0-9a-fA-F])(?:[0-9a-fA-F]{2}){16,}(?![0-9a-fA-F])|(?:\\x[0-9a-fA-F]{2}){8,}"
)
_PERCENT = re.compile(r"(?:%[0-9a-fA-F]{2}){8,}")


def injection_detect(text: str) -> list[str]:
    """Names of the prompt-injection patterns found in the text, in SIGNAL_NAMES order."""
    found = _signals(text)
    hidden = _hidden_payloads(text) + _decoded_blobs(text)
    if hidden:
        found.add("encoding_tricks")
    for payload in hidden:
        found |= _signals(payload)
    backwards = _signals(_views(text)[1][0][::-1]) - {"encoding_tricks"}
    if backwards:
        found |= backwards | {"encoding_tricks"}
    return [name for name in SIGNAL_NAMES if name in found]


def _signals(text: str) -> set[str]:
    lines, flats = _views(text)
    found = {
        name
        for name, patterns in _COMPILED
        if any(
            p.search(view)
            for p in patterns
            for view in ((lines,) if name == "delimiter_injection" else (lines, *flats))
        )
    }
    if _DAN.search(unicodedata.normalize("NFKC", _strip_invisible(text))):
        found.add("role_override")
    return found


def _natural_language(decoded: str) -> bool:
    """Whether decoded bytes read as words rather than binary, keys or JSON."""
    if len(decoded) < 12 or not decoded.isprintable():
        return False
    letters = sum(ch.isalpha() or ch == " " for ch in decoded)
    return decoded.count(" ") >= 3 and letters >= 0.8 * len(decoded)


def _decoded_blobs(text: str) -> list[str]:
    """Natural-language text hidden in base64, hex or percent-encoding."""
    found: list[str] = []
    candidates: list[bytes] = []
    for blob in _BASE64.findall(text):
        if len(blob.rstrip("=")) % 4 == 1:
            continue
        padded = blob.rstrip("=") + "=" * (-len(blob.rstrip("=")) % 4)
        try:
            candidates.append(
                base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
            )
        except (binascii.Error, ValueError):
            continue
    for blob in _HEX.findall(text):
        candidates.append(bytes.fromhex(blob.replace("\\x", "")))
    for blob in _PERCENT.findall(text):
        candidates.append(unquote(blob).encode("utf-8", errors="replace"))
    for data in candidates:
        try:
            decoded = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if _natural_language(decoded):
            found.append(decoded)
    return found

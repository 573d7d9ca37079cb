"""Client frames of the customer WebSocket, validated with JSON Schema (docs/protocol.md)."""

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from apps.core.errors import ApplicationError

UUID_STRING = {"type": "string", "format": "uuid"}

# Arrays and objects nest at most this deep in a frame (docs/protocol.md). Every frame of the
# protocol is one level deep; the limit leaves room for extensions and keeps json.loads (which
# recurses per level) far from the interpreter's recursion limit.
FRAME_MAX_DEPTH = 32
# A JSON string literal (an unterminated one runs to the end of the text), and runs of
# characters that are not brackets: what is left after removing both is the bracket structure.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")

FRAME_SCHEMAS: dict[str, dict[str, Any]] = {
    "hello": {
        "type": "object",
        "required": ["type", "conversation", "token"],
        "properties": {
            "conversation": UUID_STRING,
            "token": {"type": "string", "minLength": 1, "maxLength": 200},
            "last_seq": {"type": "integer", "minimum": 0},
        },
    },
    "message": {
        "type": "object",
        "required": ["type", "client_id", "text"],
        "properties": {"client_id": UUID_STRING, "text": {"type": "string"}},
    },
    "typing": {"type": "object", "required": ["type"]},
    "handoff": {"type": "object", "required": ["type"]},
}
VALIDATORS = {
    name: Draft202012Validator(schema, format_checker=FormatChecker())
    for name, schema in FRAME_SCHEMAS.items()
}


class FrameError(ApplicationError):
    code = "invalid_frame"
    default_message = "The frame is not valid."


class InvalidJson(FrameError):
    code = "invalid_json"
    default_message = "The frame is not valid JSON."


class FrameTooLarge(FrameError):
    code = "frame_too_large"
    default_message = "The frame is too large."


class UnknownType(FrameError):
    code = "unknown_type"
    default_message = "Unknown frame type."


class MissingField(FrameError):
    code = "missing_field"
    default_message = "A required field is missing."


@dataclass(frozen=True)
class HelloFrame:
    conversation: uuid.UUID
    token: str
    last_seq: int


@dataclass(frozen=True)
class MessageFrame:
    client_id: uuid.UUID
    text: str


@dataclass(frozen=True)
class CustomerTypingFrame:
    pass


@dataclass(frozen=True)
class HandoffFrame:
    """The customer asks for a person."""


ClientFrame = HelloFrame | MessageFrame | CustomerTypingFrame | HandoffFrame


def frame_decode(
    raw: str | None, *, max_bytes: int, validators: dict[str, Draft202012Validator]
) -> tuple[str, dict[str, Any]]:
    """Decode one JSON text frame and check it against the schema of its `type`; raise a
    FrameError with the protocol's code. Shared by every socket (chat and desk)."""
    if raw is None:
        raise FrameError("Only JSON text frames are accepted.")
    try:
        size = len(raw.encode("utf-8"))
    except UnicodeEncodeError as exc:  # servers hand over valid UTF-8 only; callers may not
        raise FrameError("A text frame must be valid UTF-8.") from exc
    if size > max_bytes:
        raise FrameTooLarge(f"Frames are limited to {max_bytes:,} bytes.")
    if _nesting_exceeds(raw, limit=FRAME_MAX_DEPTH):
        raise FrameError(f"Frames may nest arrays and objects at most {FRAME_MAX_DEPTH} deep.")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidJson() from exc
    if "\\u" in raw and not _unicode_valid(data):
        # json.loads turns an escaped lone surrogate (\ud800) into a string that cannot be
        # encoded: hashing a token or storing a text would then fail far from here.
        raise FrameError("Strings in a frame must be valid Unicode (no lone surrogate escapes).")
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise FrameError("A frame is a JSON object with a string `type`.")
    frame_type = data["type"]
    validator = validators.get(frame_type)
    if validator is None:
        raise UnknownType(f"Unknown frame type {frame_type[:40]!r}.")
    error = next(
        iter(sorted(validator.iter_errors(data), key=lambda e: e.validator != "required")), None
    )
    if error is not None:
        if error.validator == "required":
            raise MissingField(error.message)
        field = ".".join(str(part) for part in error.absolute_path) or "frame"
        raise FrameError(f"Field `{field}` is not valid.")
    return frame_type, data


def _unicode_valid(data: Any) -> bool:
    """Whether every string of a decoded frame (keys included) can be encoded as UTF-8."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _nesting_exceeds(raw: str, *, limit: int) -> bool:
    """Whether the JSON text nests arrays and objects deeper than `limit`, by one linear scan
    of its brackets outside strings, before anything parses it.

    Checked up front rather than by catching RecursionError from json.loads: the depth at which
    that fires depends on how deep the caller's stack already is (it is no contract), a frame
    just under it is parsed at full cost, and the deep structure then reaches every recursive
    step after the parse. Invalid JSON is scanned too: too deep is refused first, else
    json.loads refuses it.
    """
    if raw.count("[") + raw.count("{") <= limit:
        return False  # cannot be deeper: the common case costs two C-speed counts
    depth = 0
    for bracket in _NOT_BRACKETS.sub("", _JSON_STRING.sub("", raw)):
        if bracket in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def frame_parse(raw: str | None, *, max_bytes: int) -> ClientFrame:
    """Decode and validate one client frame, raising a FrameError with the protocol's code."""
    frame_type, data = frame_decode(raw, max_bytes=max_bytes, validators=VALIDATORS)
    if frame_type == "hello":
        return HelloFrame(
            conversation=uuid.UUID(data["conversation"]),
            token=data["token"],
            last_seq=data.get("last_seq", 0),
        )
    if frame_type == "message":
        return MessageFrame(client_id=uuid.UUID(data["client_id"]), text=data["text"])
    if frame_type == "handoff":
        return HandoffFrame()
    return CustomerTypingFrame()

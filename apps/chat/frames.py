"""Client frames of the customer WebSocket, validated with JSON Schema (docs/protocol.md)."""

import json
import uuid
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from apps.core.errors import ApplicationError

UUID_STRING = {"type": "string", "format": "uuid"}

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
class TypingFrame:
    pass


@dataclass(frozen=True)
class HandoffFrame:
    """The customer asks for a person."""


ClientFrame = HelloFrame | MessageFrame | TypingFrame | HandoffFrame


def frame_decode(
    raw: str | None, *, max_bytes: int, validators: dict[str, Draft202012Validator]
) -> tuple[str, dict[str, Any]]:
    """Decode one JSON text frame and check it against the schema of its `type`; raise a
    FrameError with the protocol's code. Shared by every socket (chat and desk)."""
    if raw is None:
        raise FrameError("Only JSON text frames are accepted.")
    if len(raw.encode("utf-8")) > max_bytes:
        raise FrameTooLarge(f"Frames are limited to {max_bytes:,} bytes.")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidJson() from exc
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
    return TypingFrame()

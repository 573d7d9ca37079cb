"""Client frames of the desk WebSocket, validated with JSON Schema (docs/desk.md).

The error classes are the customer socket's: one frame error vocabulary for every socket.
"""

import json
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from apps.chat.frames import FrameError, InvalidJson, UnknownType
from apps.pools.models import AgentProfile

TICKET_ID = {"type": "integer", "minimum": 1}
TICKET_FRAME = {
    "type": "object",
    "required": ["type", "ticket"],
    "properties": {"ticket": TICKET_ID},
}

FRAME_SCHEMAS: dict[str, dict[str, Any]] = {
    "subscribe": TICKET_FRAME,
    "unsubscribe": TICKET_FRAME,
    "typing": TICKET_FRAME,
    "presence": {
        "type": "object",
        "required": ["type", "presence"],
        "properties": {
            "presence": {"enum": [AgentProfile.Presence.ONLINE, AgentProfile.Presence.AWAY]}
        },
    },
    "ping": {"type": "object", "required": ["type"]},
}
VALIDATORS = {name: Draft202012Validator(schema) for name, schema in FRAME_SCHEMAS.items()}


@dataclass(frozen=True)
class SubscribeFrame:
    ticket: int


@dataclass(frozen=True)
class UnsubscribeFrame:
    ticket: int


@dataclass(frozen=True)
class TypingFrame:
    ticket: int


@dataclass(frozen=True)
class PresenceFrame:
    presence: str


@dataclass(frozen=True)
class PingFrame:
    pass


DeskFrame = SubscribeFrame | UnsubscribeFrame | TypingFrame | PresenceFrame | PingFrame


def desk_frame_parse(raw: str | None, *, max_bytes: int) -> DeskFrame:
    """Decode and validate one desk client frame, raising a FrameError with the contract's code."""
    if raw is None:
        raise FrameError("Only JSON text frames are accepted.")
    if len(raw.encode("utf-8")) > max_bytes:
        raise FrameError(f"Frames are limited to {max_bytes:,} bytes.")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidJson() from exc
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise FrameError("A frame is a JSON object with a string `type`.")
    frame_type = data["type"]
    validator = VALIDATORS.get(frame_type)
    if validator is None:
        raise UnknownType(f"Unknown frame type {frame_type[:40]!r}.")
    error = next(
        iter(sorted(validator.iter_errors(data), key=lambda e: e.validator != "required")), None
    )
    if error is not None:
        if error.validator == "required":
            raise FrameError(error.message)
        field = ".".join(str(part) for part in error.absolute_path) or "frame"
        raise FrameError(f"Field `{field}` is not valid.")
    match frame_type:
        case "subscribe":
            return SubscribeFrame(ticket=int(data["ticket"]))
        case "unsubscribe":
            return UnsubscribeFrame(ticket=int(data["ticket"]))
        case "typing":
            return TypingFrame(ticket=int(data["ticket"]))
        case "presence":
            return PresenceFrame(presence=data["presence"])
    return PingFrame()

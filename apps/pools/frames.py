"""Client frames of the desk WebSocket, validated with JSON Schema (docs/desk.md).

The error classes are the customer socket's: one frame error vocabulary for every socket.
"""

from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from apps.chat.frames import frame_decode
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
    frame_type, data = frame_decode(raw, max_bytes=max_bytes, validators=VALIDATORS)
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

"""Client frames of the desk WebSocket, validated with JSON Schema (docs/desk.md).

The error classes are the customer socket's: one frame error vocabulary for every socket. A
socket opened by the desk page (`?format=html`) speaks the page's frames: `view` instead of
`subscribe`/`unsubscribe`. htmx's WebSocket extension adds a `HEADERS` object to the frames it
sends; it is bounded like the rest of the frame and ignored.
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

# The desk page's frames (`?format=html`).
VIEW_FRAME = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "tab": {"type": "string", "maxLength": 60},
        "filter": {"type": "string", "maxLength": 40},
        "ticket": {"anyOf": [TICKET_ID, {"type": "null"}]},
    },
}
PAGE_VALIDATORS = {
    "view": Draft202012Validator(VIEW_FRAME),
    **{name: VALIDATORS[name] for name in ("typing", "presence", "ping")},
}


@dataclass(frozen=True)
class SubscribeFrame:
    ticket: int


@dataclass(frozen=True)
class UnsubscribeFrame:
    ticket: int


@dataclass(frozen=True)
class DeskTypingFrame:
    ticket: int


@dataclass(frozen=True)
class PresenceFrame:
    presence: str


@dataclass(frozen=True)
class PingFrame:
    pass


@dataclass(frozen=True)
class ViewFrame:
    """What the desk page shows: a queue (`tab`), a `filter` and maybe one ticket."""

    tab: str
    filter: str
    ticket: int | None


DeskFrame = (
    SubscribeFrame | UnsubscribeFrame | DeskTypingFrame | PresenceFrame | PingFrame | ViewFrame
)


def desk_frame_parse(raw: str | None, *, max_bytes: int, page: bool = False) -> DeskFrame:
    """Decode and validate one desk client frame (of the page's set with `page`), raising a
    FrameError with the contract's code."""
    validators = PAGE_VALIDATORS if page else VALIDATORS
    frame_type, data = frame_decode(raw, max_bytes=max_bytes, validators=validators)
    match frame_type:
        case "view":
            ticket = data.get("ticket")
            return ViewFrame(
                tab=str(data.get("tab", "")),
                filter=str(data.get("filter", "")),
                ticket=int(ticket) if ticket is not None else None,
            )
        case "subscribe":
            return SubscribeFrame(ticket=int(data["ticket"]))
        case "unsubscribe":
            return UnsubscribeFrame(ticket=int(data["ticket"]))
        case "typing":
            return DeskTypingFrame(ticket=int(data["ticket"]))
        case "presence":
            return PresenceFrame(presence=data["presence"])
    return PingFrame()

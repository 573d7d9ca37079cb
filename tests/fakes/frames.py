"""Hypothesis strategies for WebSocket client frames, shared by the chat and desk fuzz tests.

A `Frame` is what a client can put on the wire: a text frame or a binary one. The strategies
draw arbitrary text, arbitrary JSON values, binary frames, and near-valid frames: a socket's own
frame types with fields dropped, replaced by wrong values (wrong types, out-of-range numbers,
wrong UUIDs, huge or odd unicode strings) or joined by extra ones. `decoded` is the oracle for
what every socket refuses alike (docs/protocol.md): more than 64 KiB, not JSON, nested more
than 32 deep, a lone surrogate in a string; each fuzz test adds its socket's rules on top.
"""

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from channels.testing import WebsocketCommunicator
from hypothesis import strategies as st

MAX_FRAME_BYTES = 64 * 1024  # CHAT_MAX_FRAME_BYTES's default
MAX_DEPTH = 32
MAX_MESSAGE_CHARS = 4000  # CHAT_MAX_MESSAGE_CHARS's default
BIDI_CONTROLS = frozenset(chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


@dataclass(frozen=True)
class Frame:
    """One client frame: `text` for a text frame, else `data` for a binary one."""

    text: str | None = None
    data: bytes | None = None

    def __repr__(self) -> str:  # hypothesis prints failing examples: keep huge ones readable
        shown = self.text if self.text is not None else self.data
        assert shown is not None
        if len(shown) > 300:
            return f"Frame({shown[:150]!r} ... {len(shown)} long ... {shown[-50:]!r})"
        return f"Frame({shown!r})"


INVALID = object()  # what `decoded` returns for a frame no socket accepts


def decoded(frame: Frame) -> Any:
    """The JSON value of a frame every socket would decode, else INVALID."""
    if frame.text is None or len(frame.text.encode("utf-8")) > MAX_FRAME_BYTES:
        return INVALID
    try:
        value = json.loads(frame.text)
    except (ValueError, RecursionError):
        return INVALID
    if depth(value) > MAX_DEPTH or not unicode_valid(value):
        return INVALID
    return value


def depth(value: Any) -> int:
    """How deep arrays and objects nest in a JSON value (a scalar is 0, `{}` is 1)."""
    if isinstance(value, list):
        return 1 + max((depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(item) for item in value.values()), default=0)
    return 0


def unicode_valid(value: Any) -> bool:
    """Whether no string of a JSON value (keys included) holds an unpaired surrogate."""
    if isinstance(value, str):
        return not any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)
    if isinstance(value, list):
        return all(unicode_valid(item) for item in value)
    if isinstance(value, dict):
        return all(unicode_valid(key) and unicode_valid(item) for key, item in value.items())
    return True


def is_uuid(value: Any) -> bool:
    """An RFC 4122 UUID in its text form: 8-4-4-4-12 hex digits, either case."""
    if not isinstance(value, str) or len(value) != 36:
        return False
    if [i for i, ch in enumerate(value) if ch == "-"] != [8, 13, 18, 23]:
        return False
    return all(ch in "0123456789abcdefABCDEF" for ch in value.replace("-", ""))


def is_json_integer(value: Any) -> bool:
    """A JSON Schema integer: a number with no fraction (1.0 is one; true is not)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def text_acceptable(value: Any) -> bool:
    """Message text the protocol accepts: not empty, not too long, no control, bidi override
    or unpaired surrogate characters (tab and newlines are fine)."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    if not text or len(text) > MAX_MESSAGE_CHARS:
        return False
    for ch in text:
        code = ord(ch)
        if (code < 0x20 and ch not in "\t\n\r") or 0x7F <= code <= 0x9F:
            return False
        if ch in BIDI_CONTROLS or 0xD800 <= code <= 0xDFFF:
            return False
    return True


def json_frame(value: Any) -> Frame:
    # ensure_ascii (the default): unpaired surrogates travel as \ud800 escapes, as any JSON
    # encoder may send them, and the text frame itself stays valid UTF-8.
    return Frame(text=json.dumps(value))


odd_strings = st.sampled_from(
    [
        "",
        " ",
        "\t\n\r ",
        "\x00",
        "a\x1bb",
        "\x7f",
        "pay \u202eevil",
        "\u2066x\u2069",
        "\ud800",
        "\udfff",
        "\U0001f600",
        "\ufeff",
        "\u200b",
        "\u0301",
        "e\u0301" * 3,
        "\uff54\uff59\uff50\uff49\uff4e\uff47",  # fullwidth "typing"
        "null",
        "NaN",
        "[]",
        "{}",
        '"',
        "\\",
        "<script>alert(1)</script>",
        "'; DROP TABLE chat_message; --",
        "%s%n%x",
        "{{7*7}}",
        "${jndi:ldap://x}",
        "../../etc/passwd",
        "x" * (MAX_MESSAGE_CHARS + 1),
        " " * (MAX_MESSAGE_CHARS + 10) + "x",
    ]
)
# Strings with an unpaired surrogate (json_frame sends it as a \ud800 escape).
surrogate_strings = st.builds(
    lambda before, surrogate, after: before + surrogate + after,
    st.text(max_size=8),
    st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"]),
    st.text(max_size=8),
)
strings = st.one_of(st.text(max_size=40), odd_strings, surrogate_strings)
huge_strings = st.integers(min_value=MAX_FRAME_BYTES - 200, max_value=MAX_FRAME_BYTES + 200).map(
    lambda n: "y" * n
)
numbers = st.one_of(
    st.integers(),
    st.floats(),
    st.sampled_from(
        [
            0,
            -1,
            1,
            2**31,
            2**53 + 1,
            2**63 - 1,
            2**63,
            2**64,
            -(2**63) - 1,
            10**100,
            10**4000,
            1.0,
            1.5,
            -0.0,
            1e308,
            -1e308,
            float("inf"),
            float("-inf"),
            float("nan"),
        ]
    ),
)
wrong_uuids = st.one_of(
    st.uuids().map(lambda u: u.hex),  # no hyphens
    st.uuids().map(lambda u: "{" + str(u) + "}"),
    st.uuids().map(lambda u: "urn:uuid:" + str(u)),
    st.uuids().map(lambda u: str(u)[:-1]),
    st.uuids().map(lambda u: str(u) + "0"),
    st.uuids().map(lambda u: str(u) + "\n"),
    st.uuids().map(lambda u: " " + str(u)),
    st.uuids().map(lambda u: str(u)[:-4] + "-" + str(u)[-4:]),  # an extra hyphen
    st.uuids().map(lambda u: str(u).replace("-", "", 1) + "-"),
    st.uuids().map(lambda u: str(u)[:-1] + "g"),
    st.just("00000000-0000-0000-0000-000000000000"),
    strings,
)
uuid_like = st.one_of(st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()), wrong_uuids)


def json_values(keys: list[str]) -> st.SearchStrategy[Any]:
    """Arbitrary JSON values; object keys are often a socket's own field names."""
    scalars = st.one_of(st.none(), st.booleans(), numbers, strings)
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.one_of(st.sampled_from(keys), strings), inner, max_size=4),
        ),
        max_leaves=12,
    )


def nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def type_values(types: list[str]) -> st.SearchStrategy[Any]:
    """Values for `type`: the socket's own, near misses, other types and other JSON."""
    return st.one_of(
        st.sampled_from(types),
        st.sampled_from(types).map(str.upper),
        st.sampled_from(types).map(lambda t: t + " "),
        st.sampled_from(types).map(lambda t: t + "\x00"),
        st.sampled_from(["shout", "welcome", "error", "subscribe", "hello", "ping", "message"]),
        strings,
        st.none(),
        numbers,
        st.lists(st.sampled_from(types), max_size=2),
    )


def near_valid(
    bases: st.SearchStrategy[dict[str, Any]],
    fields: dict[str, st.SearchStrategy[Any]],
    keys: list[str],
) -> st.SearchStrategy[dict[str, Any]]:
    """A valid frame of the socket with up to three changes: a field dropped, a field given
    a value from `fields`, an extra field, or another `type`."""
    types = sorted({str(key) for key in fields} | {"type"})

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        frame = dict(draw(bases))
        frame_types = [str(frame.get("type", ""))]
        for _ in range(draw(st.integers(min_value=0, max_value=3))):
            change = draw(st.sampled_from(["drop", "replace", "extra", "type"]))
            if change == "drop" and frame:
                del frame[draw(st.sampled_from(sorted(frame)))]
            elif change == "replace":
                field = draw(st.sampled_from(sorted(fields)))
                frame[field] = draw(fields[field])
            elif change == "extra":
                frame[draw(st.one_of(strings, st.sampled_from(types)))] = draw(json_values(keys))
            else:
                frame["type"] = draw(type_values(frame_types))
        return frame

    return build()


def frames(
    near_valid_frames: st.SearchStrategy[dict[str, Any]], keys: list[str]
) -> st.SearchStrategy[Frame]:
    """Every kind of frame a client could send, most of them near-valid."""
    frame_types = ["hello", "message", "typing", "handoff", "subscribe", "ping", "presence"]
    return st.one_of(
        near_valid_frames.map(json_frame),
        near_valid_frames.map(json_frame),
        near_valid_frames.map(lambda frame: json_frame({**frame, "pad": "z" * MAX_FRAME_BYTES})),
        json_values(keys).map(json_frame),
        st.text(max_size=80).map(lambda text: Frame(text=text)),
        st.text(st.sampled_from('{}[]":, \\nulltrefas0123456789.eE+-'), max_size=60).map(
            lambda text: Frame(text=text)
        ),
        st.sampled_from(frame_types).map(
            lambda t: Frame(text='{"type": "' + t + '", "ticket": ' + "9" * 5000 + "}")
        ),
        st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999"]).map(
            lambda n: Frame(text='{"type": "hello", "last_seq": ' + n + ', "ticket": ' + n + "}")
        ),
        st.integers(min_value=MAX_DEPTH - 2, max_value=MAX_DEPTH + 2).map(
            lambda levels: json_frame({"type": "typing", "ticket": nested(levels)})
        ),
        st.sampled_from(["[" * 30000 + "]" * 30000, "{" * 30000, '{"a":' * 20000]).map(
            lambda text: Frame(text=text)
        ),
        huge_strings.map(lambda text: Frame(text=text)),
        st.binary(max_size=64).map(lambda data: Frame(data=data)),
        st.sampled_from(frame_types).map(lambda t: Frame(data=json.dumps({"type": t}).encode())),
    )


def fresh_client_id() -> str:
    return str(uuid.uuid4())


# --- a socket under fuzz ------------------------------------------------------------------

WAIT = 10  # seconds for an answer that must come (the machine may be busy)


async def send(ws: WebsocketCommunicator, frame: Frame) -> None:
    """Hand the frame to the consumer as the server would (send_to refuses an empty frame,
    which a client may send)."""
    if frame.text is not None:
        await ws.send_input({"type": "websocket.receive", "text": frame.text})
    else:
        await ws.send_input({"type": "websocket.receive", "bytes": frame.data})


class Watch:
    """Every frame the server sends on one socket, each checked for `forbidden` text (another
    conversation's data) as it arrives and kept in `received`."""

    def __init__(self, ws: WebsocketCommunicator, forbidden: list[str]) -> None:
        self.ws, self.forbidden = ws, forbidden
        self.received: list[dict[str, Any]] = []

    async def next(self) -> dict[str, Any]:
        output = await self.ws.receive_output(timeout=WAIT)
        assert output["type"] == "websocket.send", f"not a frame: {output}"
        raw = output["text"]
        for forbidden in self.forbidden:
            assert forbidden not in raw, f"another conversation's data: {raw[:300]}"
        frame: dict[str, Any] = json.loads(raw)
        self.received.append(frame)
        return frame

    async def until(self, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Frames up to and including the first that matches."""
        frames = [await self.next()]
        while not predicate(frames[-1]):
            frames.append(await self.next())
        return frames

    async def quiet(self) -> None:
        """Read until nothing arrives for a moment."""
        while not await self.ws.receive_nothing(timeout=0.1):
            await self.next()

    async def probe(self, number: int) -> list[dict[str, Any]]:
        """Send probe `number`, `{"type": "probe-N"}`, and return what arrived before its
        `unknown_type` error, which names it. A frame's errors are sent while it is handled,
        so none arrives after the probe's answer."""
        name = f"probe-{number}"
        await self.ws.send_json_to({"type": name})
        frames = await self.until(
            lambda f: f["type"] == "error" and f["code"] == "unknown_type" and name in f["message"]
        )
        return frames[:-1]


def error_of(
    received: list[dict[str, Any]], *, codes: set[str], others: set[str]
) -> dict[str, Any] | None:
    """The one error frame among `received` (None without); every error code must be in
    `codes` and every other frame's type in `others`."""
    for frame in received:
        assert frame["type"] == "error" or frame["type"] in others, frame
    errors = [frame for frame in received if frame["type"] == "error"]
    assert len(errors) <= 1, f"more than one error for one frame: {errors}"
    if not errors:
        return None
    assert errors[0]["code"] in codes, f"undocumented code: {errors[0]}"
    assert isinstance(errors[0]["message"], str), errors[0]
    assert errors[0]["message"], errors[0]
    return errors[0]

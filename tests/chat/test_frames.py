"""The shared frame decoder of both sockets: what it refuses before anything is parsed."""

import json

import pytest

from apps.chat.frames import FRAME_MAX_DEPTH, VALIDATORS, FrameError, frame_decode


def decode(raw: str):
    return frame_decode(raw, max_bytes=64 * 1024, validators=VALIDATORS)


def typing_with(pad: object) -> str:
    return json.dumps({"type": "typing", "pad": pad})


def nested(levels: int) -> list:
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_nesting_up_to_the_limit_is_accepted():
    # The frame object is one level, so the pad may nest one level less.
    assert decode(typing_with(nested(FRAME_MAX_DEPTH - 1)))[0] == "typing"


@pytest.mark.parametrize(
    "raw",
    [
        typing_with(nested(FRAME_MAX_DEPTH)),
        "[" * 30000 + "]" * 30000,
        "[" * 30000,  # unclosed: json.loads recursed on this too
        '{"type": "typing", "pad": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}",
    ],
    ids=["one-too-deep", "issue-12-frame", "unclosed", "objects"],
)
def test_nesting_deeper_than_the_limit_is_an_invalid_frame(raw):
    with pytest.raises(FrameError) as refused:
        decode(raw)
    assert refused.value.code == "invalid_frame"
    assert str(FRAME_MAX_DEPTH) in refused.value.message


@pytest.mark.parametrize(
    "text",
    ["[" * 5000, "{" * 100 + "]" * 100, '\\"[[[[' * 1000, "}" * 50 + "[" * 50],
    ids=["brackets", "mixed", "escaped-quotes", "closers-first"],
)
def test_brackets_inside_strings_do_not_count(text):
    assert decode(typing_with(text))[0] == "typing"


def test_too_deep_but_invalid_json_is_still_refused_without_a_traceback():
    with pytest.raises(FrameError):
        decode('{"type": "typing", "pad": "unterminated ' + "[" * 100)
    with pytest.raises(FrameError):
        decode("[" * 100 + '"')


@pytest.mark.parametrize(
    "raw",
    [
        '{"type": "hello", "conversation": "c", "token": "ab\\ud800"}',
        '{"type": "typing", "pad": ["\\udfff"]}',
        '{"type": "typing", "\\udc00": 1}',
        '{"type": "typing", "pad": "\\ud83d\\ud83d"}',
    ],
    ids=["token", "nested", "key", "two-highs"],
)
def test_a_lone_surrogate_escape_is_an_invalid_frame(raw):
    with pytest.raises(FrameError) as refused:
        decode(raw)
    assert refused.value.code == "invalid_frame"


def test_a_surrogate_pair_escape_is_one_character_and_fine():
    _, data = decode('{"type": "typing", "pad": "\\ud83d\\ude00"}')
    assert data["pad"] == "\U0001f600"


def test_a_text_that_is_not_utf8_is_an_invalid_frame_not_a_crash():
    with pytest.raises(FrameError):
        decode('{"type": "typing", "pad": "\ud800"}')  # a str no server hands over

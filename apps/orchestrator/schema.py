"""The `route_ticket` tool: its JSON Schema, built from the active pools, and its validator."""

from typing import Any

from jsonschema import Draft202012Validator

TOOL_NAME = "route_ticket"
ACTIONS = ["route", "escalate", "clarify"]
# Output costs 5x input on Haiku 4.5 and the reason is most of it: the model is asked for a few
# words. A longer reason is still accepted (and stored up to REASON_STORED_CHARS): retrying a
# call over a reason's length would cost more than the words it saves.
REASON_MAX_CHARS = 40
REASON_STORED_CHARS = 300


def route_tool_schema(
    pool_slugs: list[str], *, reason_max: int = REASON_MAX_CHARS
) -> dict[str, Any]:
    """JSON Schema of the tool input; `pool` may only name an active pool. `missing_fields` is
    optional (the model leaves it out unless it asks to clarify: fewer tokens written)."""
    return {
        "type": "object",
        "properties": {
            "action": {
                "type": "string",
                "enum": ACTIONS,
                "description": "route: a pool fits; clarify: a pool fits but facts are missing; "
                "escalate: no pool fits or you cannot tell.",
            },
            "pool": {
                "type": ["string", "null"],
                "enum": [*pool_slugs, None],
                "description": "The pool for route/clarify; null for escalate.",
            },
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "reason": {
                "type": "string",
                "maxLength": reason_max,
                "description": "A few words, no personal data.",
            },
            "missing_fields": {
                "type": "array",
                "items": {"type": "string", "maxLength": 64},
                "maxItems": 10,
                "description": "Only for clarify: facts the pool needs that the message lacks.",
            },
        },
        "required": ["action", "pool", "confidence", "reason"],
        "additionalProperties": False,
    }


def route_tool(pool_slugs: list[str]) -> dict[str, Any]:
    """The tool definition sent to the Messages API."""
    return {
        "name": TOOL_NAME,
        "description": "Record where this support ticket should go.",
        "input_schema": route_tool_schema(pool_slugs),
    }


def route_output_errors(output: Any, pool_slugs: list[str]) -> list[str]:
    """Human-readable schema violations of a tool input (empty when valid)."""
    validator = Draft202012Validator(route_tool_schema(pool_slugs, reason_max=REASON_STORED_CHARS))
    errors = sorted(validator.iter_errors(output), key=lambda error: list(error.absolute_path))
    messages = []
    for error in errors:
        where = ".".join(str(part) for part in error.absolute_path) or "(root)"
        messages.append(f"{where}: {error.message}"[:300])
    return messages

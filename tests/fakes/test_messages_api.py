"""The stand-in speaks the Messages API to the real `anthropic` SDK over real HTTP."""

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import anthropic
import pytest
from anthropic.types import (
    MessageParam,
    TextBlock,
    ToolChoiceToolParam,
    ToolParam,
    ToolUseBlock,
)
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming

from tests.fakes.fixtures import messages_api  # noqa: F401
from tests.fakes.messages_api import (
    MessagesApiStandIn,
    delay,
    disconnect,
    error,
    malformed,
    raw,
    text,
    tool_use,
)

MODEL = "claude-haiku-4-5"
SYSTEM = "You route support tickets to a pool."
TOOLS: list[ToolParam] = [
    {
        "name": "route_ticket",
        "description": "Route the ticket.",
        "input_schema": {
            "type": "object",
            "properties": {
                "pool": {"type": "string", "enum": ["billing", "tech"]},
                "confidence": {"type": "number"},
                "action": {"type": "string", "enum": ["route", "ask", "escalate"]},
                "reason": {"type": "string"},
                "missing_fields": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["pool", "confidence", "action", "reason", "missing_fields"],
        },
    }
]
FORCED: ToolChoiceToolParam = {"type": "tool", "name": "route_ticket"}
MESSAGES: list[MessageParam] = [{"role": "user", "content": "I was charged twice."}]


def make_client(
    standin: MessagesApiStandIn, *, max_retries: int = 2, timeout: float = 2.0, **kwargs
) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="test-key",
        base_url=standin.url,
        max_retries=max_retries,
        timeout=timeout,
        **kwargs,
    )


@pytest.fixture
def client(messages_api: MessagesApiStandIn) -> Iterator[anthropic.Anthropic]:  # noqa: F811
    with make_client(messages_api) as sdk:
        yield sdk


def route(sdk: anthropic.Anthropic) -> anthropic.types.Message:
    return sdk.messages.create(
        model=MODEL,
        max_tokens=256,
        system=SYSTEM,
        tools=TOOLS,
        tool_choice=FORCED,
        messages=MESSAGES,
    )


def test_forced_tool_call_returns_scripted_input_and_usage(messages_api, client):  # noqa: F811
    scripted = {"pool": "tech", "confidence": 0.42, "action": "ask", "reason": "r"}
    messages_api.enqueue(
        tool_use(
            scripted,
            input_tokens=1200,
            output_tokens=55,
            cache_read_input_tokens=4100,
            cache_creation_input_tokens=7,
        )
    )

    message = route(client)

    assert message.model == MODEL
    assert message.stop_reason == "tool_use"
    (block,) = message.content
    assert isinstance(block, ToolUseBlock)
    assert block.name == "route_ticket"
    assert block.input == scripted
    assert block.id.startswith("toolu_")
    assert message.usage.input_tokens == 1200
    assert message.usage.output_tokens == 55
    assert message.usage.cache_read_input_tokens == 4100
    assert message.usage.cache_creation_input_tokens == 7
    assert messages_api.pending == 0


def test_request_is_recorded_with_what_we_sent(messages_api, client):  # noqa: F811
    route(client)

    (request,) = messages_api.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert request.json is not None
    assert request.json["system"] == SYSTEM
    assert request.json["tools"] == TOOLS
    assert request.json["messages"] == MESSAGES
    assert request.json["tool_choice"] == FORCED
    assert request.json["model"] == MODEL
    assert json.loads(request.body) == request.json
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.api_key == "test-key"
    assert request.headers["anthropic-version"]
    assert request.headers["x-stainless-retry-count"] == "0"


def test_default_answers_route_ticket_with_first_pool(messages_api, client):  # noqa: F811
    (block,) = route(client).content
    assert isinstance(block, ToolUseBlock)
    assert block.input == {
        "pool": "billing",
        "confidence": 0.9,
        "action": "route",
        "reason": "stand-in",
        "missing_fields": [],
    }


def test_default_is_settable_and_reset_restores_it(messages_api, client):  # noqa: F811
    messages_api.default = lambda body: text(f"echo {body['model']}")
    messages_api.enqueue(tool_use({"pool": "tech"}))
    route(client)
    (block,) = route(client).content
    assert isinstance(block, TextBlock)
    assert block.text == f"echo {MODEL}"

    messages_api.enqueue(text("left over"))
    messages_api.reset()
    assert messages_api.requests == []
    assert messages_api.pending == 0
    (block,) = route(client).content
    assert isinstance(block, ToolUseBlock)


def test_text_reply_gives_a_text_block(messages_api, client):  # noqa: F811
    messages_api.enqueue(text("I think it is billing.", input_tokens=10, output_tokens=3))
    message = route(client)
    (block,) = message.content
    assert isinstance(block, TextBlock)
    assert block.text == "I think it is billing."
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (10, 3)


def test_overloaded_then_success_after_one_sdk_retry(messages_api, client):  # noqa: F811
    messages_api.enqueue(error(529, "overloaded_error"), tool_use({"pool": "tech"}))

    (block,) = route(client).content

    assert isinstance(block, ToolUseBlock)
    assert block.input == {"pool": "tech"}
    assert len(messages_api.requests) == 2
    assert [r.headers["x-stainless-retry-count"] for r in messages_api.requests] == ["0", "1"]


def test_overloaded_three_times_raises_overloaded_error(messages_api, client):  # noqa: F811
    messages_api.enqueue(*[error(529, "overloaded_error")] * 3)
    started = time.monotonic()

    with pytest.raises(anthropic.OverloadedError) as caught:
        route(client)

    assert time.monotonic() - started < 1.0  # retry-after-ms: 1, not the SDK's 0.5 s backoff
    err = caught.value
    assert isinstance(err, anthropic.InternalServerError)
    assert isinstance(err, anthropic.APIStatusError)
    assert err.status_code == 529
    assert err.type == "overloaded_error"
    assert err.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": err.request_id,
    }
    assert err.request_id is not None
    assert err.request_id.startswith("req_")
    assert len(messages_api.requests) == 3


def test_server_error_raises_internal_server_error(messages_api, client):  # noqa: F811
    messages_api.enqueue(*[error(500, "api_error")] * 3)
    with pytest.raises(anthropic.InternalServerError) as caught:
        route(client)
    assert type(caught.value) is anthropic.InternalServerError
    assert caught.value.status_code == 500
    assert len(messages_api.requests) == 3


def test_rate_limited_raises_rate_limit_error_after_retries(messages_api, client):  # noqa: F811
    messages_api.enqueue(*[error(429, "rate_limit_error")] * 3)
    with pytest.raises(anthropic.RateLimitError) as caught:
        route(client)
    assert caught.value.status_code == 429
    assert len(messages_api.requests) == 3


def test_x_should_retry_false_stops_the_sdk_retrying(messages_api, client):  # noqa: F811
    messages_api.enqueue(error(529, "overloaded_error", headers={"x-should-retry": "false"}))
    with pytest.raises(anthropic.OverloadedError):
        route(client)
    assert len(messages_api.requests) == 1


def test_bad_request_raises_at_once(messages_api, client):  # noqa: F811
    messages_api.enqueue(error(400, "invalid_request_error", "tools.0: bad schema"))
    with pytest.raises(anthropic.BadRequestError) as caught:
        route(client)
    assert caught.value.status_code == 400
    assert caught.value.api_message == "tools.0: bad schema"
    assert len(messages_api.requests) == 1


def test_wrong_key_is_refused_with_authentication_error(messages_api, client):  # noqa: F811
    messages_api.require_key = "the-real-key"
    messages_api.enqueue(tool_use({"pool": "tech"}))
    with pytest.raises(anthropic.AuthenticationError) as caught:
        route(client)
    assert caught.value.status_code == 401
    assert len(messages_api.requests) == 1
    assert messages_api.pending == 1  # a refused request consumes no scripted reply


def test_request_without_key_or_version_is_refused(messages_api):  # noqa: F811
    def post(headers: dict[str, str]) -> tuple[int, dict]:
        request = urllib.request.Request(
            messages_api.url + "/v1/messages",
            data=json.dumps({"model": MODEL}).encode(),
            headers={"content-type": "application/json", **headers},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as refused:
            return refused.code, json.load(refused)

    status, body = post({"anthropic-version": "2026-10-21"})
    assert (status, body["error"]["type"]) == (401, "authentication_error")
    status, body = post({"x-api-key": "k"})
    assert (status, body["error"]["type"]) == (400, "invalid_request_error")
    status, body = post({"x-api-key": "k", "anthropic-version": "2026-10-21"})
    assert (status, body["type"]) == (200, "message")


def test_slow_answer_raises_api_timeout_error(messages_api):  # noqa: F811
    messages_api.enqueue(delay(3, tool_use({"pool": "tech"})))
    started = time.monotonic()
    with (
        make_client(messages_api, max_retries=0, timeout=0.3) as sdk,
        pytest.raises(anthropic.APITimeoutError) as caught,
    ):
        route(sdk)
    assert time.monotonic() - started < 1.5
    assert isinstance(caught.value, anthropic.APIConnectionError)


def test_sdk_retries_a_timed_out_attempt(messages_api):  # noqa: F811
    messages_api.enqueue(delay(3, tool_use({"pool": "tech"})))
    with make_client(messages_api, max_retries=1, timeout=0.3) as sdk:
        (block,) = route(sdk).content
    assert isinstance(block, ToolUseBlock)
    assert block.input["pool"] == "billing"  # the retry got `default`
    assert len(messages_api.requests) == 2


def test_dropped_connection_raises_api_connection_error(messages_api):  # noqa: F811
    messages_api.enqueue(disconnect())
    with (
        make_client(messages_api, max_retries=0) as sdk,
        pytest.raises(anthropic.APIConnectionError) as caught,
    ):
        route(sdk)
    assert not isinstance(caught.value, anthropic.APITimeoutError)


def test_malformed_json_raises_json_decode_error_not_retried(messages_api, client):  # noqa: F811
    messages_api.enqueue(malformed())
    with pytest.raises(json.JSONDecodeError) as caught:
        route(client)
    assert not isinstance(caught.value, anthropic.AnthropicError)
    assert isinstance(caught.value, ValueError)
    assert len(messages_api.requests) == 1


def test_non_json_answer_is_returned_as_str_unless_strict(messages_api, client):  # noqa: F811
    messages_api.enqueue(raw(200, b"<html>proxy</html>", {"content-type": "text/html"}))
    assert route(client) == "<html>proxy</html>"  # type: ignore[comparison-overlap]

    messages_api.enqueue(raw(200, b"<html>proxy</html>", {"content-type": "text/html"}))
    with (
        make_client(messages_api, _strict_response_validation=True) as strict,
        pytest.raises(anthropic.APIResponseValidationError),
    ):
        route(strict)


def test_streaming_returns_the_scripted_tool_call(messages_api, client):  # noqa: F811
    messages_api.enqueue(tool_use({"pool": "tech", "confidence": 0.5}, output_tokens=12))
    with client.messages.stream(
        model=MODEL,
        max_tokens=256,
        tools=TOOLS,
        tool_choice=FORCED,
        messages=MESSAGES,
    ) as stream:
        message = stream.get_final_message()
    (block,) = message.content
    assert isinstance(block, ToolUseBlock)
    assert block.input == {"pool": "tech", "confidence": 0.5}
    assert message.usage.output_tokens == 12
    assert (messages_api.requests[0].json or {}).get("stream") is True


async def test_async_client_works_too(messages_api):  # noqa: F811
    messages_api.enqueue(error(529, "overloaded_error"), tool_use({"pool": "tech"}))
    async with anthropic.AsyncAnthropic(
        api_key="test-key", base_url=messages_api.url, max_retries=2, timeout=2.0
    ) as sdk:
        message = await sdk.messages.create(
            model=MODEL,
            max_tokens=256,
            tools=TOOLS,
            tool_choice=FORCED,
            messages=MESSAGES,
        )
    (block,) = message.content
    assert isinstance(block, ToolUseBlock)
    assert block.input == {"pool": "tech"}
    assert len(messages_api.requests) == 2


def batch_params(content: str) -> MessageCreateParamsNonStreaming:
    return {
        "model": MODEL,
        "max_tokens": 256,
        "system": SYSTEM,
        "tools": TOOLS,
        "tool_choice": FORCED,
        "messages": [{"role": "user", "content": content}],
    }


def test_batch_create_retrieve_results_round_trip(messages_api, client):  # noqa: F811
    messages_api.enqueue(
        tool_use({"pool": "tech"}, input_tokens=9), error(500, "api_error", "boom")
    )

    batch = client.messages.batches.create(
        requests=[
            {"custom_id": "t-1", "params": batch_params("printer on fire")},
            {"custom_id": "t-2", "params": batch_params("refund please")},
            {"custom_id": "t-3", "params": batch_params("hello")},
        ]
    )
    assert batch.id.startswith("msgbatch_")
    assert batch.processing_status == "ended"

    retrieved = client.messages.batches.retrieve(batch.id)
    assert retrieved.processing_status == "ended"
    assert retrieved.request_counts.succeeded == 2
    assert retrieved.request_counts.errored == 1
    assert retrieved.results_url == f"{messages_api.url}/v1/messages/batches/{batch.id}/results"

    results = {line.custom_id: line.result for line in client.messages.batches.results(batch.id)}
    first, second, third = results["t-1"], results["t-2"], results["t-3"]
    assert first.type == "succeeded"
    assert first.message.content[0].input == {"pool": "tech"}
    assert first.message.usage.input_tokens == 9
    assert first.message.usage.service_tier == "batch"
    assert second.type == "errored"
    assert second.error.error.type == "api_error"
    assert third.type == "succeeded"
    assert third.message.content[0].input["pool"] == "billing"

    recorded = messages_api.batches[batch.id]
    assert [r["custom_id"] for r in recorded.requests] == ["t-1", "t-2", "t-3"]
    assert recorded.requests[0]["params"]["system"] == SYSTEM
    assert [(r.method, r.path) for r in messages_api.requests] == [
        ("POST", "/v1/messages/batches"),
        ("GET", f"/v1/messages/batches/{batch.id}"),
        ("GET", f"/v1/messages/batches/{batch.id}"),
        ("GET", f"/v1/messages/batches/{batch.id}/results"),
    ]
    assert messages_api.message_requests == []


def test_batch_ends_after_configured_polls(messages_api, client):  # noqa: F811
    messages_api.batch_polls_before_end = 2
    batch = client.messages.batches.create(
        requests=[{"custom_id": "only", "params": batch_params("hi")}]
    )
    assert batch.processing_status == "in_progress"
    assert batch.results_url is None
    assert batch.request_counts.processing == 1

    statuses = [client.messages.batches.retrieve(batch.id).processing_status for _ in range(3)]
    assert statuses == ["in_progress", "in_progress", "ended"]
    (line,) = client.messages.batches.results(batch.id)
    assert line.custom_id == "only"
    assert line.result.type == "succeeded"


def test_unknown_batch_is_not_found(messages_api, client):  # noqa: F811
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve("msgbatch_nope")

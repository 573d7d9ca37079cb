"""The OpenAPI schema at /api/schema/ says what the API answers (issue 12, finding 10).

Unit tests check answers of the app in-process against the schema it serves, with
schemathesis's own validation. `test_schemathesis_finds_no_answer_outside_the_schema` runs
schemathesis against a live uvicorn (the scale run): anonymously and as staff and customer.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from apps.chat.models import Message
from apps.chat.services import conversation_create
from apps.flows.demo import DEFAULT_POOLS
from apps.flows.messages import message_post
from apps.flows.routing import ticket_route
from apps.pools.services import pool_upsert
from tests.fakes.files import png_bytes
from tests.servers import ROOT, AsgiServer, embedded_env, manage, migrated_sqlite

# --- In-process: the app's answers against the schema it serves -----------------------------


@pytest.fixture
def openapi(db) -> dict[str, Any]:
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    return schema


@pytest.fixture
def admin_api(db) -> APIClient:
    client = APIClient()
    client.force_authenticate(User.objects.create_superuser("root", password="pw"))
    return client


@pytest.fixture
def reviewed_ticket(db) -> Message:
    """A ticket that went to review (no model tier in tests): a decision with no pool."""
    for spec in DEFAULT_POOLS:
        pool_upsert(**spec)
    created = conversation_create(name="Grace")
    posted = message_post(
        conversation=created.conversation, text="hello", sender=Message.Sender.CUSTOMER
    )
    assert posted.message.ticket is not None
    ticket_route(ticket=posted.message.ticket)
    return posted.message


def assert_answer_documented(
    openapi: dict[str, Any], method: str, template: str, answer: Any, path: str | None = None
) -> None:
    """The status, Content-Type and body of a Django test response are what the schema says
    `method template` answers (schemathesis's response_schema_conformance)."""
    operation = openapi["paths"][template][method.lower()]
    status = str(answer.status_code)
    assert status in operation["responses"], (
        f"{method} {template} answered {status}, documented {sorted(operation['responses'])}"
    )
    documented = operation["responses"][status].get("content", {})
    content_type = answer["Content-Type"].split(";")[0]
    assert content_type in documented, f"{content_type} not in {sorted(documented)}"
    request = requests.Request(method, f"http://testserver{path or template}").prepare()
    response = schemathesis.Response(
        status_code=answer.status_code,
        headers={name: [value] for name, value in answer.headers.items()},
        content=answer.content,
        request=request,
        elapsed=0.0,
        verify=False,
    )
    schemathesis.openapi.from_dict(openapi)[template][method].validate_response(response)


@pytest.mark.parametrize("path", ["/api/v1/tickets/", "/api/v1/review/", "/api/v1/decisions/"])
def test_list_endpoints_answer_the_page_their_schema_declares(
    openapi, admin_api, reviewed_ticket, path
):
    answer = admin_api.get(path)
    assert answer.status_code == 200
    assert set(answer.json()) == {"count", "next", "previous", "results"}
    assert answer.json()["count"] >= 1
    assert_answer_documented(openapi, "GET", path, answer)
    parameters = {p["name"] for p in openapi["paths"][path]["get"].get("parameters", [])}
    assert {"limit", "offset"} <= parameters


def test_a_dry_run_that_finds_no_pool_answers_its_schema(openapi, admin_api, reviewed_ticket):
    answer = admin_api.post("/api/v1/route/", {"text": "hello"}, format="json")
    assert answer.status_code == 200
    assert answer.json()["decision"]["pool"] is None
    assert_answer_documented(openapi, "POST", "/api/v1/route/", answer)


def test_a_ticket_in_review_answers_its_detail_schema(openapi, admin_api, reviewed_ticket):
    ticket_id = reviewed_ticket.ticket_id
    answer = admin_api.get(f"/api/v1/tickets/{ticket_id}/")
    assert answer.status_code == 200
    assert answer.json()["decisions"]
    assert_answer_documented(
        openapi, "GET", "/api/v1/tickets/{ticket_id}/", answer, f"/api/v1/tickets/{ticket_id}/"
    )
    # The nested lists are typed, not "anything".
    properties = openapi["components"]["schemas"]["TicketDetail"]["properties"]
    for name in ("notes", "activities", "decisions", "labels", "drafts"):
        assert properties[name]["type"] == "array", name


@pytest.mark.parametrize(
    ("method", "template", "path", "status"),
    [
        ("GET", "/api/v1/tickets/", "/api/v1/tickets/", 401),
        ("GET", "/api/v1/decisions/", "/api/v1/decisions/", 401),
        ("POST", "/api/v1/route/", "/api/v1/route/", 401),
        ("GET", "/api/v1/tickets/{ticket_id}/", "/api/v1/tickets/1/", 401),
    ],
)
def test_anonymous_refusals_are_documented(openapi, method, template, path, status):
    answer = APIClient().generic(method, path)
    assert answer.status_code == status
    assert_answer_documented(openapi, method, template, answer, path)


@pytest.mark.parametrize(
    ("method", "template", "path", "body", "status", "field"),
    [
        # Unknown or malformed objects: 404 with the error shape, also when no URL matches.
        ("GET", "/api/v1/tickets/{ticket_id}/", "/api/v1/tickets/987654/", None, 404, None),
        ("GET", "/api/v1/tickets/{ticket_id}/", "/api/v1/tickets/null,null/", None, 404, None),
        ("POST", "/api/v1/review/{item_id}/resolve/", "/api/v1/review/-1/resolve/", {}, 404, None),
        ("GET", "/api/v1/tickets/", "/api/v1/tickets/?pool=nowhere", None, 404, None),
        # Bad input: 400 `invalid`, and `fields` always names the field.
        ("GET", "/api/v1/tickets/", "/api/v1/tickets/?assignee=her", None, 400, "assignee"),
        ("GET", "/api/v1/tickets/", "/api/v1/tickets/?conversation=x", None, 400, "conversation"),
        ("GET", "/api/v1/review/", "/api/v1/review/?status=shut", None, 400, "status"),
        ("POST", "/api/v1/route/", "/api/v1/route/", {}, 400, "text"),
        ("GET", "/api/v1/decisions/", "/api/v1/decisions/?from=yesterday", None, 400, "from"),
        # Ids too large for the database are refused as input, not a server error.
        ("GET", "/api/v1/tickets/", f"/api/v1/tickets/?assignee={10**22}", None, 400, "assignee"),
        ("GET", "/api/v1/decisions/", f"/api/v1/decisions/?ticket={10**22}", None, 400, "ticket"),
    ],
)
def test_refusals_are_documented_with_the_error_shape(
    openapi, admin_api, method, template, path, body, status, field
):
    answer = admin_api.generic(
        method, path, json.dumps(body) if body is not None else "", content_type="application/json"
    )
    assert answer.status_code == status, answer.content
    error = answer.json()["error"]
    if field is not None:
        assert field in error["fields"]
    assert_answer_documented(openapi, method, template, answer, path)


def test_every_operation_documents_its_refusals_with_the_error_shape(openapi):
    error_ref = "#/components/schemas/Error"
    for template, methods in openapi["paths"].items():
        for method, operation in methods.items():
            responses = operation["responses"]
            name = f"{method.upper()} {template}"
            if operation.get("security") and {} not in operation["security"]:
                assert "401" in responses, name
            if "{" in template:
                assert "404" in responses, name
            if operation.get("requestBody") or any(
                p["in"] == "query" for p in operation.get("parameters", [])
            ):
                assert "400" in responses, name
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    schemas = [c["schema"] for c in response["content"].values()]
                    assert all(s == {"$ref": error_ref} for s in schemas), (name, status)


# --- Live: schemathesis against a running server --------------------------------------------

# Checks that pass honestly on this API (see the finding): no 5xx, and every answer's status,
# Content-Type and body are the ones the schema declares.
CHECKS = [
    "not_a_server_error",
    "response_schema_conformance",
    "status_code_conformance",
    "content_type_conformance",
]
# Test cases per operation and phase, and the phases, of each pass: an anonymous caller gets
# refusals (few cases tell), staff and the customer reach the data (every phase, stateful
# sequences too). The whole test stays well under 2 minutes.
PASSES = {
    "anonymous": ["--max-examples", "5", "--phases", "coverage,fuzzing"],
    "authorized": ["--max-examples", os.environ.get("API_SCHEMA_MAX_EXAMPLES", "15")],
}


@dataclass
class LiveApi:
    server: AsgiServer
    workdir: Path
    staff_token: str
    conversation_id: str
    conversation_token: str
    ticket_ids: list[int]
    review_item_ids: list[int]
    attachment_ids: list[int]


def _call(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:  # our own loopback server
        return json.load(response)


def _multipart(name: str, content: bytes, boundary: str = "schema-test-boundary") -> bytes:
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    """A seeded embedded server with a routed ticket, a review item and an attachment."""
    workdir = tmp_path_factory.mktemp("api-schema")
    env = embedded_env(
        workdir,
        MEDIA_ROOT=str(workdir / "media"),
        # Every request comes from 127.0.0.1: limits would answer most of the run with 429
        # (documented, but then the 2xx answers go untested).
        CHAT_RATE_LIMIT="100000/minute",
        CONVERSATION_CREATE_RATE="100000/hour",
        ROUTE_DRY_RUN_RATE="100000/minute",
    )
    migrated_sqlite(env, seed=True)
    staff_token = manage("drf_create_token", "admin", env=env).split()[2]
    server = AsgiServer(env, log=workdir / "server.log")
    server.start()
    try:
        api = f"{server.url}/api/v1"
        json_body = {"Content-Type": "application/json"}
        conversation = _call(f"{api}/conversations/", method="POST", body=b"{}", headers=json_body)
        bearer = {"Authorization": f"Bearer {conversation['token']}"}
        _call(
            f"{api}/conversations/{conversation['id']}/messages/",
            method="POST",
            body=json.dumps({"text": "I was charged twice this month, please refund"}).encode(),
            headers={**json_body, **bearer},
        )
        upload = _call(
            f"{api}/conversations/{conversation['id']}/attachments/",
            method="POST",
            body=_multipart("receipt.png", png_bytes()),
            headers={
                **bearer,
                "Content-Type": "multipart/form-data; boundary=schema-test-boundary",
            },
        )
        other = _call(f"{api}/conversations/", method="POST", body=b"{}", headers=json_body)
        _call(
            f"{api}/conversations/{other['id']}/messages/",
            method="POST",
            body=json.dumps({"text": "hello"}).encode(),
            headers={**json_body, "Authorization": f"Bearer {other['token']}"},
        )
        staff = {"Authorization": f"Token {staff_token}"}
        deadline = time.monotonic() + 30
        while True:  # routing runs in a thread of the server
            tickets = _call(f"{api}/tickets/", headers=staff)["results"]
            if tickets and all(t["status"] != "routing" for t in tickets):
                break
            assert time.monotonic() < deadline, tickets
            time.sleep(0.2)
        items = _call(f"{api}/review/", headers=staff)["results"]
        yield LiveApi(
            server=server,
            workdir=workdir,
            staff_token=staff_token,
            conversation_id=conversation["id"],
            conversation_token=conversation["token"],
            ticket_ids=[t["id"] for t in tickets],
            review_item_ids=[i["id"] for i in items],
            attachment_ids=[a["id"] for a in upload["attachments"]],
        )
    finally:
        server.stop()


def _config(live: LiveApi, *, authorized: bool) -> str:
    """schemathesis.toml for one pass: credentials per security scheme, and the seeded ids
    mixed into the generated ones so that the 2xx answers are checked too."""
    if not authorized:
        return ""
    return f"""
[auth.openapi.tokenAuth]
api_key = "Token {live.staff_token}"

[auth.openapi.conversationToken]
bearer = "{live.conversation_token}"

[dictionaries.tickets]
values = {live.ticket_ids}

[dictionaries.review_items]
values = {live.review_item_ids or [1]}

[dictionaries.attachments]
values = {live.attachment_ids}

[parameters]
conversation_id = "{live.conversation_id}"
ticket_id = {{ dictionary = "tickets", probability = 0.7 }}
item_id = {{ dictionary = "review_items", probability = 0.7 }}
attachment_id = {{ dictionary = "attachments", probability = 0.7 }}
"""


def _schemathesis(live: LiveApi, *, authorized: bool) -> dict[str, Any]:
    """One `st run` over every operation; returns its JSON report (output shown on failure)."""
    name = "authorized" if authorized else "anonymous"
    config = live.workdir / f"{name}.toml"
    config.write_text(_config(live, authorized=authorized))
    report = live.workdir / f"{name}.json"
    command = [
        sys.executable, "-m", "schemathesis.cli",
        "--config-file", str(config),
        "run", f"{live.server.url}/api/schema/",
        "--checks", ",".join(CHECKS),
        *PASSES[name],
        "--generation-database", "none",
        "--seed", os.environ.get("API_SCHEMA_SEED", "20261205"),
        "--workers", "2",
        "--request-timeout", "30",
        "--no-color",
        "--report", "json", "--report-json-path", str(report),
    ]  # fmt: skip
    completed = subprocess.run(
        command,
        cwd=live.workdir,  # schemathesis's own files stay out of the checkout
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, f"schemathesis ({name}):\n{completed.stdout[-20000:]}"
    result: dict[str, Any] = json.loads(report.read_text())
    return result


@pytest.mark.scale
@pytest.mark.timeout(420)
def test_schemathesis_finds_no_answer_outside_the_schema(live_api):
    for authorized in (False, True):
        report = _schemathesis(live_api, authorized=authorized)
        assert report["operations"]["tested"] == report["operations"]["total"] >= 28
        assert report["test_cases"]["generated"] > 0
        assert report["failures"] == [], report["failures"]
    # The authorized pass reached the data, not only refusals.
    assert not report["warnings"]["missing_auth"], report["warnings"]

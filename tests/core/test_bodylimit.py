"""Request bodies are refused over their limit before they are read (apps/core/bodylimit.py),
driven as an ASGI application; tests/integration/test_upload_limits.py does it over TCP."""

import asyncio
import json
import uuid

import pytest

from supportdesk.asgi import application

UPLOAD = f"/api/v1/conversations/{uuid.uuid4()}/attachments/"
CHUNK = 16 * 1024


def http_scope(path: str, *, content_length: int | None = None) -> dict:
    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"multipart/form-data; boundary=x")]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


class Client:
    """The client side of one request: body chunks handed out on demand, and what was sent."""

    def __init__(self, *, chunks: int, size: int = CHUNK) -> None:
        # `chunks` 0: no body may be read at all.
        self.remaining = chunks
        self.size = size
        self.read = 0
        self.sent: list[dict] = []

    async def receive(self) -> dict:
        if self.remaining == 0:
            if self.read == 0:
                raise AssertionError("the body was read")
            await asyncio.Event().wait()  # the body ended: the client waits for the answer
        self.remaining -= 1
        self.read += self.size
        return {"type": "http.request", "body": b"x" * self.size, "more_body": self.remaining > 0}

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return self.sent[0]["status"]

    @property
    def error(self) -> dict:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent[1:]))["error"]


async def test_an_upload_declared_over_the_limit_is_refused_without_reading_it(settings):
    settings.ATTACHMENT_MAX_BYTES = 100_000
    client = Client(chunks=0)  # any read fails the test
    await application(http_scope(UPLOAD, content_length=50_000_000), client.receive, client.send)
    assert client.status == 413
    assert client.error == {
        "code": "file_too_large",
        "message": "Files can be up to 100,000 bytes.",
        "limit": 100_000,
    }
    assert (b"connection", b"close") in client.sent[0]["headers"]


async def test_a_chunked_upload_is_refused_as_soon_as_it_passes_the_limit(settings):
    settings.ATTACHMENT_MAX_BYTES = 100_000
    client = Client(chunks=3000)  # 48 MiB on offer, without a Content-Length
    await application(http_scope(UPLOAD), client.receive, client.send)
    assert client.status == 413
    assert client.error["code"] == "file_too_large"
    # Read up to the limit and its multipart allowance (64 KiB), and not a chunk further.
    assert client.read <= 100_000 + 64 * 1024 + CHUNK


@pytest.mark.django_db(transaction=True)
async def test_an_upload_within_the_limit_reaches_the_view(settings):
    settings.ATTACHMENT_MAX_BYTES = 100_000
    client = Client(chunks=2)
    await application(http_scope(UPLOAD, content_length=2 * CHUNK), client.receive, client.send)
    # The view answered (no credentials): the body was read whole, and no 413.
    assert client.status == 401
    assert client.read == 2 * CHUNK


async def test_other_requests_carry_at_most_djangos_data_upload_limit(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    declared = Client(chunks=0)
    await application(
        http_scope("/api/v1/route/", content_length=10_000_000), declared.receive, declared.send
    )
    assert declared.status == 413
    assert declared.error == {
        "code": "request_too_large",
        "message": "Request bodies can be up to 65,536 bytes.",
        "limit": 65536,
    }
    streamed = Client(chunks=1000)
    await application(http_scope("/admin/login/"), streamed.receive, streamed.send)
    assert streamed.status == 413
    assert streamed.read <= 64 * 1024 + CHUNK

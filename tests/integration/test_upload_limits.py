"""An upload over ATTACHMENT_MAX_BYTES is refused by a real uvicorn before the body is read
(truthful Content-Length) or while it streams (chunked), and nothing of it is stored.

Raw sockets: the client keeps sending, or holds the body back, the way an attacker would, and
a refusal that came only after the whole body would time out here.
"""

import json
import select
import socket
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.files import png_bytes
from tests.servers import AsgiServer, embedded_env, migrated_sqlite

pytestmark = pytest.mark.scale

LIMIT = 64 * 1024
# The chunked body on offer: far more than the limit. The server must answer before it ends
# (it never does); what the client sent by then includes what the kernels buffer (MBs).
OFFERED = 40_000_000
BOUNDARY = "limit-test-boundary"


@dataclass
class Upload:
    server: AsgiServer
    media: Path
    conversation: str
    token: str

    @property
    def path(self) -> str:
        return f"/api/v1/conversations/{self.conversation}/attachments/"

    def head(self, *, content_length: int | None) -> bytes:
        framing = (
            f"Content-Length: {content_length}"
            if content_length is not None
            else "Transfer-Encoding: chunked"
        )
        return (
            f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {self.token}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{framing}\r\n\r\n"
        ).encode()

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", int(self.server.port or 0)), timeout=10)

    def detail(self) -> dict:
        request = urllib.request.Request(
            f"{self.server.url}/api/v1/conversations/{self.conversation}/",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def stored_files(self) -> list[Path]:
        return [p for p in self.media.rglob("*") if p.is_file()] if self.media.exists() else []


def file_part_start(name: str = "big.png") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode() + png_bytes()


def read_answer(sock: socket.socket) -> tuple[int, dict]:
    """Status and JSON body of the one HTTP answer on `sock` (the server closes after it)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 1 << 30


@pytest.fixture(scope="module")
def upload(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upload]:
    workdir = tmp_path_factory.mktemp("upload-limits")
    env = embedded_env(workdir, MEDIA_ROOT=str(workdir / "media"), ATTACHMENT_MAX_BYTES=str(LIMIT))
    migrated_sqlite(env, seed=False)
    server = AsgiServer(env, log=workdir / "server.log")
    server.start()
    try:
        request = urllib.request.Request(
            f"{server.url}/api/v1/conversations/",
            data=b"{}",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            conversation = json.load(response)
        yield Upload(
            server=server,
            media=workdir / "media",
            conversation=conversation["id"],
            token=conversation["token"],
        )
    finally:
        server.stop()


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(upload):
    with upload.connect() as sock:
        # 50 MB announced; only the start of the file is sent, then the client waits.
        sock.sendall(upload.head(content_length=50_000_000) + file_part_start())
        status, body = read_answer(sock)
    assert status == 413
    assert body["error"] == {
        "code": "file_too_large",
        "message": "Files can be up to 65,536 bytes.",
        "limit": LIMIT,
    }
    assert upload.detail()["messages"] == []
    assert upload.stored_files() == []


def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(upload):
    sent = 0
    with upload.connect() as sock:
        sock.sendall(upload.head(content_length=None))
        chunk = file_part_start() + b"\x00" * (16 * 1024)
        answered = False
        while sent < OFFERED:  # never the end of the body
            if select.select([sock], [], [], 0)[0]:
                answered = True
                break
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
            chunk = b"\x00" * (16 * 1024)
        assert answered or select.select([sock], [], [], 10)[0], f"no answer after {sent} bytes"
        status, body = read_answer(sock)
    assert status == 413
    assert body["error"]["code"] == "file_too_large"
    assert sent < OFFERED
    assert upload.detail()["messages"] == []
    assert upload.stored_files() == []


def test_a_file_within_the_limit_is_stored(upload):
    body = file_part_start("small.png") + f"\r\n--{BOUNDARY}--\r\n".encode()
    with upload.connect() as sock:
        sock.sendall(upload.head(content_length=len(body)) + body)
        status, answer = read_answer(sock)
    assert status == 201, answer
    assert answer["attachments"][0]["name"] == "small.png"
    assert len(upload.stored_files()) == 1

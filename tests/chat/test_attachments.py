"""Attachments both ways: customer and agent uploads, type by content, and who may read them."""

import base64
import hashlib
import io
import uuid
from pathlib import Path
from typing import Any, ClassVar

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, TemporaryFileUploadHandler
from django.http.multipartparser import MultiPartParser
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.chat.attachments import UploadSizeLimitHandler, attachment_name_clean
from apps.chat.models import Attachment, Message
from apps.chat.selectors import event_list_after
from apps.chat.services import conversation_create
from apps.flows.messages import message_post
from apps.pools.services import pool_membership_set, pool_upsert, ticket_queue, ticket_resolve
from apps.tickets.models import Ticket
from supportdesk.asgi import application
from tests.fakes.files import pdf_bytes, png_bytes

pytestmark = pytest.mark.django_db

CUSTOMER = Message.Sender.CUSTOMER


# The well-known 134-byte 1x1 progressive JPEG (JFIF).
JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////////"
    "////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQABPxA="
)
PNG = png_bytes()
PDF = pdf_bytes()


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    """Each test stores files in its own directory, so "nothing stored" can be checked."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def stored_files(media: Path) -> list[Path]:
    return [path for path in media.rglob("*") if path.is_file()] if media.exists() else []


@pytest.fixture
def client():
    return APIClient()


def bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def staff_token(user):
    return {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=user).key}"}


def upload(
    client, created, content, name="file.bin", content_type="application/octet-stream", **data
):
    return client.post(
        f"/api/v1/conversations/{created.conversation.id}/attachments/",
        {"file": SimpleUploadedFile(name, content, content_type=content_type), **data},
        format="multipart",
        **bearer(created.token),
    )


def staff_upload(client, user, ticket, content, name="reply.png", **data):
    return client.post(
        f"/api/v1/tickets/{ticket.pk}/attachments/",
        {"file": SimpleUploadedFile(name, content, content_type="image/png"), **data},
        format="multipart",
        **staff_token(user),
    )


def nothing_stored(media: Path) -> bool:
    return (
        stored_files(media) == []
        and not Attachment.objects.exists()
        and not Message.objects.exists()
        and not Ticket.objects.exists()
    )


@pytest.fixture
def created(db):
    return conversation_create(name="Ada")


@pytest.fixture
def agent(db):
    return get_user_model().objects.create_user(
        username="ann", password="x", is_staff=True, first_name="Ann"
    )


@pytest.fixture
def billing_ticket(created, billing_pool, agent):
    """The customer's ticket, queued in Billing; `agent` works Billing."""
    message_post(conversation=created.conversation, text="My invoice is wrong", sender=CUSTOMER)
    pool_membership_set(user=agent, pools=[billing_pool])
    ticket = Ticket.objects.get(conversation=created.conversation)
    return ticket_queue(ticket=ticket, pool=billing_pool)


# --- customer uploads --------------------------------------------------------------------------


def test_customer_png_upload_is_one_message_whose_event_carries_the_attachment(
    client, created, media
):
    response = upload(client, created, PNG, "screen shot.png", "image/png", text="It says error")
    assert response.status_code == 201
    body = response.json()
    attachment = Attachment.objects.get()
    expected = {
        "id": attachment.pk,
        "name": "screen shot.png",
        "content_type": "image/png",
        "size": len(PNG),
        "url": f"/api/v1/attachments/{attachment.pk}/",
    }
    assert body["text"] == "It says error"
    assert body["attachments"] == [expected]
    frames = [e.frame() for e in event_list_after(conversation_id=created.conversation.id, after=0)]
    assert frames[0]["type"] == "message"
    assert frames[0]["attachments"] == [expected]
    assert frames[0]["text"] == "It says error"
    assert frames[1]["status"] == "routing"  # a first message that is a file opens a ticket
    assert attachment.message_id == body["id"]
    assert attachment.sha256 == hashlib.sha256(PNG).hexdigest()
    # Stored under a random name: the customer's file name never becomes a path.
    [path] = stored_files(media)
    assert path.read_bytes() == PNG
    assert "screen" not in str(path)
    assert path.parent.name == created.conversation.id.hex


def test_customer_pdf_without_caption_is_an_attachment_only_message(client, created):
    response = upload(client, created, PDF, "invoice.pdf", "application/pdf")
    assert response.status_code == 201
    assert response.json()["text"] == ""
    assert response.json()["attachments"][0]["content_type"] == "application/pdf"
    assert response.json()["attachments"][0]["name"] == "invoice.pdf"
    message = Message.objects.get()
    assert message.text == ""
    assert message.ticket is not None


def test_jpeg_is_accepted_and_named_for_its_type(client, created):
    response = upload(client, created, JPEG, "photo", "application/octet-stream")
    assert response.status_code == 201
    assert response.json()["attachments"][0]["content_type"] == "image/jpeg"
    assert response.json()["attachments"][0]["name"] == "photo.jpg"


def test_attachment_only_first_message_is_routed_to_review_for_a_person(
    client, created, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert upload(client, created, PNG, "a.png", "image/png").status_code == 201
    # Routing reads only text; with none, a person looks at it.
    assert Ticket.objects.get().status == Ticket.Status.IN_REVIEW


def test_type_comes_from_the_bytes_not_the_name_or_content_type(client, created):
    response = upload(client, created, PNG, "invoice.pdf", "application/pdf")
    assert response.status_code == 201
    attachment = response.json()["attachments"][0]
    assert attachment["content_type"] == "image/png"
    assert attachment["name"] == "invoice.png"  # the extension follows the content


@pytest.mark.parametrize(
    "content",
    [
        b"<!doctype html><script>alert(document.cookie)</script>",
        b"alert(1); // javascript",
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        b"GIF87 but not really",
        b"PK\x03\x04 a zip archive",
    ],
)
def test_content_that_is_not_an_allowed_type_is_refused_415_whatever_its_name(
    client, created, media, content
):
    response = upload(client, created, content, "cat.png", "image/png")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_file_type"
    assert nothing_stored(media)


def test_too_large_file_is_413_with_the_limit_and_nothing_is_stored(
    client, created, media, settings
):
    settings.ATTACHMENT_MAX_BYTES = 100
    big = png_bytes(width=40, height=40)
    assert len(big) > 100
    response = upload(client, created, big, "big.png", "image/png", text="see attached")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"
    assert response.json()["error"]["limit"] == 100
    assert nothing_stored(media)


def test_a_request_far_over_the_limit_is_refused_before_its_body_is_parsed(
    client, created, media, settings
):
    settings.ATTACHMENT_MAX_BYTES = 1000
    response = upload(client, created, PNG + b"\x00" * 200_000, "huge.png", "image/png")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"
    assert nothing_stored(media)


def _multipart(boundary: str, file: bytes, text: str = "") -> bytes:
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + file
        + (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n'
            f"{text}\r\n--{boundary}--\r\n"
        ).encode()
    )


def test_the_upload_handler_stops_the_parser_at_the_limit():
    limit = 100_000
    body = _multipart("xyz", PNG + b"\x00" * 1_000_000, "caption")
    stream = io.BytesIO(body)
    limiter = UploadSizeLimitHandler(limit=limit)
    spooler = TemporaryFileUploadHandler()
    meta = {"CONTENT_TYPE": "multipart/form-data; boundary=xyz", "CONTENT_LENGTH": str(len(body))}
    _, files = MultiPartParser(meta, stream, [limiter, spooler]).parse()
    assert limiter.exceeded
    assert "file" not in files
    # The parser stopped reading: the rest of the body was neither read nor spooled.
    assert stream.tell() < limit + 3 * 64 * 1024
    assert spooler.file.closed


def test_a_file_under_the_limit_passes_the_upload_handler_untouched():
    body = _multipart("xyz", PNG, "caption")
    limiter = UploadSizeLimitHandler(limit=len(PNG))
    meta = {"CONTENT_TYPE": "multipart/form-data; boundary=xyz", "CONTENT_LENGTH": str(len(body))}
    post, files = MultiPartParser(
        meta, io.BytesIO(body), [limiter, TemporaryFileUploadHandler()]
    ).parse()
    assert not limiter.exceeded
    (uploaded,) = files.getlist("file")
    assert uploaded.read() == PNG
    assert post["text"] == "caption"


class CountingUploadHandler(FileUploadHandler):
    """Counts the file bytes that get past the handlers before it."""

    seen: ClassVar[list[int]] = []

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.seen.append(0)

    def receive_data_chunk(self, raw_data, start):
        self.seen[-1] += len(raw_data)
        return raw_data

    def file_complete(self, file_size):
        return None


def test_an_upload_is_stopped_while_it_streams_not_after(client, created, media, settings):
    settings.ATTACHMENT_MAX_BYTES = 100_000
    settings.FILE_UPLOAD_HANDLERS = [
        "tests.chat.test_attachments.CountingUploadHandler",
        *settings.FILE_UPLOAD_HANDLERS,
    ]
    CountingUploadHandler.seen.clear()
    big = PNG + b"\x00" * 150_000  # within the envelope allowance: Content-Length lets it in
    response = upload(client, created, big, "big.png", "image/png")
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "file_too_large",
        "message": "Files can be up to 100,000 bytes.",
        "limit": 100_000,
    }
    # The handlers after the limit (which spool to memory or a temporary file) got only the
    # bytes read before it was passed, not the file.
    assert CountingUploadHandler.seen
    assert max(CountingUploadHandler.seen) < len(big)
    assert nothing_stored(media)


def test_empty_file_is_400_empty_file(client, created, media):
    response = upload(client, created, b"", "nothing.png", "image/png")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "empty_file"
    assert nothing_stored(media)


def test_missing_file_field_is_a_field_error(client, created):
    response = client.post(
        f"/api/v1/conversations/{created.conversation.id}/attachments/",
        {"text": "where is it"},
        format="multipart",
        **bearer(created.token),
    )
    assert response.status_code == 400
    assert "file" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    ("text", "code"), [("x" * 4001, "text_too_long"), ("pay \u202eevil", "invalid_text")]
)
def test_a_refused_caption_stores_nothing(client, created, media, text, code):
    response = upload(client, created, PNG, "a.png", "image/png", text=text)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert nothing_stored(media)


def test_uploads_count_against_the_chat_rate_limit(client, created, media, settings):
    settings.CHAT_RATE_LIMIT = "1/minute"
    assert upload(client, created, PNG, "a.png", "image/png").status_code == 201
    refused = upload(client, created, PNG, "b.png", "image/png")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert len(stored_files(media)) == 1  # the refused file did not stay behind
    assert Attachment.objects.count() == 1


def test_repeated_client_id_returns_the_stored_message_and_stores_one_file(client, created, media):
    client_id = str(uuid.uuid4())
    first = upload(client, created, PNG, "a.png", "image/png", client_id=client_id)
    again = upload(client, created, PNG, "a.png", "image/png", client_id=client_id)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert again.json()["attachments"] == first.json()["attachments"]
    assert len(stored_files(media)) == 1


def test_upload_to_another_conversation_is_404(client, created, media):
    other = conversation_create()
    response = client.post(
        f"/api/v1/conversations/{other.conversation.id}/attachments/",
        {"file": SimpleUploadedFile("a.png", PNG, content_type="image/png")},
        format="multipart",
        **bearer(created.token),
    )
    assert response.status_code == 404
    assert nothing_stored(media)


def test_conversation_detail_lists_message_attachments(client, created):
    upload(client, created, PNG, "a.png", "image/png")
    message_post(conversation=created.conversation, text="and a question", sender=CUSTOMER)
    detail = client.get(
        f"/api/v1/conversations/{created.conversation.id}/", **bearer(created.token)
    )
    messages = detail.json()["messages"]
    assert [len(m["attachments"]) for m in messages] == [1, 0]


@pytest.mark.parametrize(
    ("given", "content_type", "shown"),
    [
        ("../../etc/passwd", "image/png", "passwd.png"),
        ("C:\\Users\\ada\\Desktop\\bill.PDF", "application/pdf", "bill.pdf"),
        ("inv\u202egnp.exe", "image/png", "invgnp.png"),
        ("a\x00b\x1b[31m.png", "image/png", "ab[31m.png"),
        ("  .hidden  ", "image/gif", "hidden.gif"),
        ("", "image/webp", "attachment.webp"),
        ("photo.jpeg", "image/jpeg", "photo.jpeg"),
        ("x" * 500 + ".png", "image/png", "x" * 116 + ".png"),
    ],
)
def test_display_names_are_sanitised(given, content_type, shown):
    assert attachment_name_clean(given, content_type=content_type) == shown


# --- downloads -----------------------------------------------------------------------------


def test_owner_downloads_the_exact_bytes_with_safe_headers(client, created):
    url = upload(client, created, PNG, "shot.png", "image/png").json()["attachments"][0]["url"]
    response = client.get(url, **bearer(created.token))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PNG
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"] == 'inline; filename="shot.png"'
    assert response["Cache-Control"] == "private"
    assert response["Content-Length"] == str(len(PNG))


def test_pdf_is_served_as_a_download(client, created):
    url = upload(client, created, PDF, "bill.pdf", "application/pdf").json()["attachments"][0][
        "url"
    ]
    response = client.get(url, **bearer(created.token))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="bill.pdf"'


def test_another_conversations_token_or_no_credentials_get_404(client, created):
    url = upload(client, created, PNG, "a.png", "image/png").json()["attachments"][0]["url"]
    other = conversation_create()
    assert client.get(url, **bearer(other.token)).status_code == 404
    assert client.get(url).status_code == 404
    # The same answer as for an attachment that does not exist.
    missing = client.get("/api/v1/attachments/999999/", **bearer(created.token))
    assert missing.status_code == 404
    assert missing.json() == client.get(url, **bearer(other.token)).json()


def test_staff_of_the_tickets_pool_can_download_staff_of_another_pool_cannot(
    client, created, billing_ticket, agent
):
    url = upload(client, created, PNG, "a.png", "image/png").json()["attachments"][0]["url"]
    assert client.get(url, **staff_token(agent)).status_code == 200

    outsider = get_user_model().objects.create_user(username="sam", is_staff=True)
    pool_membership_set(
        user=outsider, pools=[pool_upsert(slug="shipping", name="Shipping", description="Parcels.")]
    )
    assert client.get(url, **staff_token(outsider)).status_code == 404

    customer_account = get_user_model().objects.create_user(username="eve")  # not staff
    assert client.get(url, **staff_token(customer_account)).status_code == 404

    boss = get_user_model().objects.create_user(username="boss", is_staff=True, is_superuser=True)
    assert client.get(url, **staff_token(boss)).status_code == 200


# --- staff uploads -------------------------------------------------------------------------------


def test_staff_upload_is_an_agent_message_that_claims_the_queued_ticket(
    client, created, billing_ticket, agent
):
    response = staff_upload(client, agent, billing_ticket, PNG, "receipt.png", text="Your receipt")
    assert response.status_code == 201
    body = response.json()
    assert body["sender"] == "agent"
    assert body["author"] == "Ann"
    assert body["text"] == "Your receipt"
    assert body["attachments"][0]["name"] == "receipt.png"
    attachment = Attachment.objects.get()
    assert (attachment.sender, attachment.uploaded_by) == ("agent", agent)
    ticket = Ticket.objects.get(pk=billing_ticket.pk)
    assert (ticket.status, ticket.assignee) == (Ticket.Status.ASSIGNED, agent)
    assert ticket.first_response_at is not None
    # The customer can read what the agent sent.
    assert client.get(body["attachments"][0]["url"], **bearer(created.token)).status_code == 200


def test_staff_upload_with_a_session_passes_the_csrf_check_and_the_size_limit(
    billing_ticket, agent, media, settings
):
    """The desk uploads with its session: the CSRF check reads the form before the view does,
    so the size limit must be in place before authentication (this was a 500)."""
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(agent)
    browser.get("/desk/")
    csrf = {"HTTP_X_CSRFTOKEN": browser.cookies["csrftoken"].value}
    url = f"/api/v1/tickets/{billing_ticket.pk}/attachments/"

    def send(content: bytes, **headers: Any):
        upload = SimpleUploadedFile("receipt.png", content, content_type="image/png")
        return browser.post(url, {"file": upload}, format="multipart", **headers)

    assert send(PNG).status_code == 403  # no token: refused before anything is stored
    assert send(PNG, **csrf).status_code == 201
    settings.ATTACHMENT_MAX_BYTES = len(PNG) - 1
    refused = send(PNG, **csrf)
    assert (refused.status_code, refused.json()["error"]["code"]) == (413, "file_too_large")
    assert Attachment.objects.count() == 1


def test_staff_upload_to_a_ticket_they_cannot_see_is_404_and_stores_nothing(
    client, billing_ticket, media
):
    outsider = get_user_model().objects.create_user(username="sam", is_staff=True)
    response = staff_upload(client, outsider, billing_ticket, PNG)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert stored_files(media) == []
    assert not Attachment.objects.exists()


def test_staff_upload_to_a_resolved_ticket_is_409(client, billing_ticket, agent, media):
    ticket_resolve(ticket=billing_ticket, actor=agent)
    response = staff_upload(client, agent, billing_ticket, PNG)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert stored_files(media) == []


def test_staff_upload_is_checked_by_content_too(client, billing_ticket, agent, media):
    response = staff_upload(client, agent, billing_ticket, b"<html>hi</html>", "x.png")
    assert response.status_code == 415
    assert stored_files(media) == []


def test_non_staff_cannot_use_the_staff_upload(client, billing_ticket, media):
    user = get_user_model().objects.create_user(username="eve")
    assert staff_upload(client, user, billing_ticket, PNG).status_code == 403
    assert client.post(f"/api/v1/tickets/{billing_ticket.pk}/attachments/").status_code == 401
    assert stored_files(media) == []


@pytest.mark.django_db(transaction=True)
async def test_staff_upload_reaches_the_customers_socket_live(billing_ticket, agent, created):
    communicator = WebsocketCommunicator(
        application, "/ws/chat/", headers=[(b"origin", b"http://127.0.0.1:8000")]
    )
    connected, _ = await communicator.connect()
    assert connected
    try:
        await communicator.send_json_to(
            {
                "type": "hello",
                "conversation": str(created.conversation.id),
                "token": created.token,
                "last_seq": created.conversation.last_seq + 100,  # history is not the point
            }
        )
        welcome = await communicator.receive_json_from()
        assert welcome["type"] == "welcome"
        response = await database_sync_to_async(staff_upload)(
            APIClient(), agent, billing_ticket, PNG, "label.png", text="Print this"
        )
        assert response.status_code == 201
        frames = []
        while not await communicator.receive_nothing(timeout=0.3):
            frames.append(await communicator.receive_json_from())
    finally:
        await communicator.disconnect()
    [message] = [f for f in frames if f["type"] == "message"]
    assert message["sender"] == "agent"
    assert message["author"] == "Ann"
    assert message["text"] == "Print this"
    assert message["attachments"] == response.json()["attachments"]
    assert message["seq"] > welcome["seq"]
    # Claiming the queued ticket was announced too.
    assert [f["status"] for f in frames if f["type"] == "status"] == ["assigned"]

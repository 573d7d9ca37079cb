"""Attachments: images and PDFs sent in a conversation, by the customer or by an agent.

The type is decided by the file's bytes (`filetype`), never by the client's Content-Type or file
name. Files are stored through the Attachment model's FileField (Django's storage API) under a
random name, and are served only to the conversation's participants (`attachment_get_readable`).
"""

import hashlib
import mimetypes
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import filetype  # type: ignore[import-untyped]
from django.conf import settings
from django.core.files import File
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.db import transaction

from apps.chat.models import Attachment, Conversation, Message, Ticket
from apps.chat.services import MessagePosted, message_post, message_text_clean
from apps.core.errors import ApplicationError, Conflict, NotFound, ValidationFailed
from apps.pools.selectors import (
    ticket_can_access,
    user_is_staff,
    user_is_supervisor,
    user_pool_ids,
)

# `filetype` recognises every allowed type from the first bytes of the file.
SNIFF_BYTES = 8192
NAME_MAX_CHARS = 120
# `filetype` matches a few magic bytes; each allowed type must also open with its full signature.
SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "application/pdf": (b"%PDF-",),
}
EXTENSIONS = {
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    "application/pdf": (".pdf",),
}


class UnsupportedFileType(ApplicationError):
    code = "unsupported_file_type"
    http_status = 415
    default_message = "Only images (PNG, JPEG, GIF, WebP) and PDF files can be sent."


class FileTooLarge(ApplicationError):
    code = "file_too_large"
    http_status = 413
    default_message = "The file is too large."

    def __init__(self, *, limit: int) -> None:
        megabytes = limit / (1024 * 1024)
        size = f"{megabytes:g} MB" if megabytes >= 1 else f"{limit:,} bytes"
        super().__init__(f"Files can be up to {size}.", extra={"limit": limit})


class EmptyFile(ValidationFailed):
    code = "empty_file"
    default_message = "The file is empty."


class UploadSizeLimitHandler(FileUploadHandler):
    """First of the upload handlers: counts each file's bytes as the multipart parser streams
    them and stops the upload once a file passes `limit`, before the handlers after it hold
    more of it in memory or a temporary file and before the rest of the body is read.
    `exceeded` tells the view to answer `file_too_large`."""

    def __init__(self, request: Any = None, *, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.exceeded = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > self.limit:
            self.exceeded = True
            # The parser closes every handler's file and reads no further.
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the handlers after this one build the file


@dataclass(frozen=True)
class CheckedUpload:
    name: str
    content_type: str
    size: int
    sha256: str


def attachment_name_clean(name: str, *, content_type: str) -> str:
    """A display name that is safe to show and to offer as a download name: no directories,
    no control or text-direction characters, bounded length, and an extension that matches
    the detected type (a PNG sent as `invoice.pdf` or `page.html` is named `invoice.png`)."""
    base = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    base = "".join(" " if ch.isspace() else ch for ch in base if not _is_hidden(ch))
    base = " ".join(base.split()).strip(" .")
    extensions = EXTENSIONS.get(content_type) or (mimetypes.guess_extension(content_type) or "",)
    stem, suffix = base, ""
    if "." in base:
        head, tail = base.rsplit(".", 1)
        if tail.isalnum() and len(tail) <= 10:
            stem, suffix = head, "." + tail.lower()
    extension = suffix if suffix in extensions else extensions[0]
    stem = stem[: NAME_MAX_CHARS - len(extension)].strip(" .") or "attachment"
    return stem + extension


def _is_hidden(ch: str) -> bool:
    # Categories C*: controls, format characters (bidi overrides, zero-width), unassigned.
    return unicodedata.category(ch).startswith("C") and not ch.isspace()


def attachment_upload_check(*, upload: File[Any], name: str = "") -> CheckedUpload:
    """Refuse an empty, too large or not allowed file (by its bytes); return what to store."""
    limit = settings.ATTACHMENT_MAX_BYTES
    # Uploaded files know their size without being read; check it before touching the bytes.
    if upload.size > limit:
        raise FileTooLarge(limit=limit)
    upload.seek(0)
    head = upload.read(SNIFF_BYTES)
    if not head:
        raise EmptyFile()
    kind = filetype.guess(head)
    if (
        kind is None
        or kind.mime not in settings.ATTACHMENT_CONTENT_TYPES
        or not head.startswith(SIGNATURES.get(kind.mime, (b"",)))
    ):
        raise UnsupportedFileType()
    digest = hashlib.sha256()
    counted = 0
    upload.seek(0)
    for chunk in upload.chunks():
        counted += len(chunk)
        if counted > limit:  # the size the file object reported was wrong
            raise FileTooLarge(limit=limit)
        digest.update(chunk)
    upload.seek(0)
    return CheckedUpload(
        name=attachment_name_clean(name or upload.name or "", content_type=kind.mime),
        content_type=kind.mime,
        size=counted,
        sha256=digest.hexdigest(),
    )


def _caption_clean(text: str) -> str:
    # Checked before the file is stored: a refused caption stores nothing.
    return message_text_clean(text) if text.strip() else ""


def _attachment_store(
    *, conversation: Conversation, upload: File[Any], sender: str, uploaded_by: Any
) -> Attachment:
    """Check the upload and write it to storage; the row is saved by `message_post`."""
    checked = attachment_upload_check(upload=upload)
    attachment = Attachment(
        conversation=conversation,
        sender=sender,
        uploaded_by=uploaded_by,
        name=checked.name,
        content_type=checked.content_type,
        size=checked.size,
        sha256=checked.sha256,
    )
    # The storage path is random (`attachment_path`); the name given here is not used.
    attachment.file.save(uuid.uuid4().hex, upload, save=False)
    return attachment


@contextmanager
def _file_removed_on_error(attachment: Attachment) -> Iterator[None]:
    # Storage is not transactional: a file whose row was rolled back must not stay behind.
    try:
        yield
    except BaseException:
        attachment.file.delete(save=False)
        raise


def attachment_post(
    *,
    conversation: Conversation,
    upload: File[Any],
    sender: Message.Sender,
    author: Any = None,
    text: str = "",
    client_id: uuid.UUID | None = None,
) -> MessagePosted:
    """Send a file (image or PDF), with an optional caption, as one message.

    The message and its attachment are stored in one transaction and published as one
    `message` event carrying `attachments`. A customer's upload counts against the chat rate
    limit and opens a ticket like a text message; idempotent on `client_id` like messages.
    """
    if client_id is not None:
        existing = Message.objects.filter(conversation=conversation, client_id=client_id).first()
        if existing is not None:
            return MessagePosted(message=existing, created=False)
    caption = _caption_clean(text)
    attachment = _attachment_store(
        conversation=conversation, upload=upload, sender=sender, uploaded_by=author
    )
    with _file_removed_on_error(attachment):
        posted = message_post(
            conversation=conversation,
            text=caption,
            sender=sender,
            client_id=client_id,
            author=author,
            attachments=[attachment],
        )
    if not posted.created:  # a resend that raced the first upload: keep the first file only
        attachment.file.delete(save=False)
    return posted


def _ticket_check_writable(*, ticket: Ticket, actor: Any) -> None:
    if not ticket_can_access(user=actor, ticket=ticket):
        raise NotFound("No such ticket.")
    if ticket.status == Ticket.Status.RESOLVED:
        raise Conflict("The ticket is resolved; reopen it to send a file.")


def ticket_attachment_post(
    *, ticket: Ticket, actor: Any, upload: File[Any], text: str = ""
) -> Message:
    """An agent sends a file to the customer, live in their widget. Like a reply, it claims a
    queued ticket of the agent's pool and counts as the first response."""
    # Imported here: the desk (pools) builds on chat, so chat may not import it at load time.
    from apps.pools.services import ticket_claim

    _ticket_check_writable(ticket=ticket, actor=actor)
    caption = _caption_clean(text)
    attachment = _attachment_store(
        conversation=ticket.conversation,
        upload=upload,
        sender=Message.Sender.AGENT,
        uploaded_by=actor,
    )
    with _file_removed_on_error(attachment), transaction.atomic():
        locked = (
            Ticket.objects.select_for_update(no_key=True)
            .select_related("conversation")
            .get(pk=ticket.pk)
        )
        _ticket_check_writable(ticket=locked, actor=actor)
        if locked.status == Ticket.Status.QUEUED and locked.pool_id in user_pool_ids(user=actor):
            ticket_claim(ticket=locked, actor=actor)
        posted = message_post(
            conversation=locked.conversation,
            text=caption,
            sender=Message.Sender.AGENT,
            author=actor,
            attachments=[attachment],
        )
        if locked.first_response_at is None:
            Ticket.objects.filter(pk=locked.pk).update(first_response_at=posted.message.created_at)
    return posted.message


def attachment_get_readable(
    *, attachment_id: int, conversation: Conversation | None, user: Any
) -> Attachment:
    """The attachment, if the reader takes part in its conversation: the customer holding its
    token, or staff who may access one of its tickets. Otherwise NotFound, as if it did not
    exist."""
    attachment = (
        Attachment.objects.filter(pk=attachment_id, message__isnull=False)
        .select_related("conversation")
        .first()
    )
    if attachment is None or not _can_read(attachment, conversation=conversation, user=user):
        raise NotFound("No such attachment.")
    return attachment


def _can_read(attachment: Attachment, *, conversation: Conversation | None, user: Any) -> bool:
    if conversation is not None:
        return attachment.conversation_id == conversation.pk
    if not user_is_staff(user):
        return False
    # Staff read the files of the tickets they may see, not the rest of the conversation.
    ticket = Ticket.objects.filter(messages__attachments=attachment).first()
    if ticket is None:
        return user_is_supervisor(user)
    return ticket_can_access(user=user, ticket=ticket)

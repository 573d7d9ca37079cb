"""Attachments: images and PDFs sent in a conversation, by the customer or by an agent.

The type is decided by the file's bytes (`filetype`), never by the client's Content-Type or file
name. Files are stored through the Attachment model's FileField (Django's storage API) under a
random name, and are served only to the conversation's participants
(`apps.pools.selectors.attachment_get_readable`). Posting one is a flow (apps/flows/messages.py).
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

from apps.chat.models import Attachment, Conversation
from apps.chat.services import message_text_clean
from apps.core.errors import ApplicationError, ValidationFailed

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


def caption_clean(text: str) -> str:
    # Checked before the file is stored: a refused caption stores nothing.
    return message_text_clean(text) if text.strip() else ""


def attachment_store(
    *, conversation: Conversation, upload: File[Any], sender: str, uploaded_by: Any
) -> Attachment:
    """Check the upload and write it to storage; the row is saved with its message
    (`message_write`)."""
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
def file_removed_on_error(attachment: Attachment) -> Iterator[None]:
    # Storage is not transactional: a file whose row was rolled back must not stay behind.
    try:
        yield
    except BaseException:
        attachment.file.delete(save=False)
        raise

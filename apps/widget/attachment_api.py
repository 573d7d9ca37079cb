"""Attachments over REST: the customer's and the agent's uploads, and the one download door.

See docs/protocol.md (customer) and docs/desk.md (staff). Validation and permissions live in
apps/chat/attachments.py; these views parse, call one service or selector, and answer.
"""

import uuid
from typing import Any

from django.conf import settings
from django.http import FileResponse, HttpRequest
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.chat.attachments import (
    FileTooLarge,
    UploadSizeLimitHandler,
)
from apps.chat.authentication import ConversationTokenAuthentication
from apps.chat.models import Attachment, Conversation, Message
from apps.chat.services import staff_display_name
from apps.core.api import errors
from apps.core.bodylimit import BodyLimit
from apps.core.errors import NotFound
from apps.flows.messages import attachment_post, ticket_attachment_post
from apps.pools.selectors import attachment_get_readable, ticket_get_visible
from apps.widget.api import ConversationApiView, MessageSerializer

# Room for the multipart envelope and a caption next to the largest allowed file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def upload_body_limit() -> BodyLimit:
    """The largest upload request: the largest file and its multipart envelope."""
    limit = settings.ATTACHMENT_MAX_BYTES
    return BodyLimit(max_bytes=limit + MULTIPART_OVERHEAD_BYTES, error=FileTooLarge(limit=limit))


def request_size_check(request: Request) -> None:
    """Refuse an oversized upload from its Content-Length, before the body is parsed (served
    through ASGI, `RequestBodyLimit` has refused it before the body was even read)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    limit = upload_body_limit()
    if length > limit.max_bytes:
        raise limit.error


def upload_data(request: Request, limiter: UploadSizeLimitHandler) -> Any:
    """The multipart form, parsed with the file size limit applied while the file streams in:
    a file over ATTACHMENT_MAX_BYTES stops the parser at that point (`file_too_large`)."""
    data = request.data
    if limiter.exceeded:
        raise FileTooLarge(limit=settings.ATTACHMENT_MAX_BYTES)
    return data


class UploadApi(APIView):
    """A multipart upload endpoint, bounded before its body is read (apps/core/bodylimit.py)
    and while it streams (`UploadSizeLimitHandler`)."""

    parser_classes = [MultiPartParser]
    upload_limiter: UploadSizeLimitHandler

    @classmethod
    def body_limit(cls) -> BodyLimit:
        return upload_body_limit()

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        # Before authentication: a session's CSRF check reads the form, and with it the upload,
        # after which no upload handler can be added.
        self.upload_limiter = UploadSizeLimitHandler(request, limit=settings.ATTACHMENT_MAX_BYTES)
        request.upload_handlers = [self.upload_limiter, *request.upload_handlers]
        return super().initialize_request(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        request_size_check(request)  # before authentication reads the body
        super().initial(request, *args, **kwargs)


class UploadSerializer(serializers.Serializer[dict[str, Any]]):
    # Emptiness, size and type are the service's to judge, with their own error codes.
    file = serializers.FileField(allow_empty_file=True)
    # Length and control characters are checked by the service, as for messages.
    text = serializers.CharField(
        required=False, default="", allow_blank=True, trim_whitespace=False
    )


class ConversationAttachmentCreateApi(ConversationApiView, UploadApi):
    class InputSerializer(UploadSerializer):
        client_id = serializers.UUIDField(required=False, allow_null=True)

    @extend_schema(
        request={"multipart/form-data": InputSerializer},
        responses={201: MessageSerializer, 200: MessageSerializer, **errors(413, 415, 429)},
    )
    def post(self, request: Request, conversation_id: uuid.UUID) -> Response:
        """The customer sends an image or PDF (multipart `file`, optional `text`, `client_id`)."""
        conversation = self.get_conversation(request, conversation_id)
        serializer = self.InputSerializer(data=upload_data(request, self.upload_limiter))
        serializer.is_valid(raise_exception=True)
        posted = attachment_post(
            conversation=conversation,
            upload=serializer.validated_data["file"],
            text=serializer.validated_data["text"],
            client_id=serializer.validated_data.get("client_id"),
            sender=Message.Sender.CUSTOMER,
        )
        code = status.HTTP_201_CREATED if posted.created else status.HTTP_200_OK
        return Response(MessageSerializer(posted.message).data, status=code)


class TicketAttachmentCreateApi(UploadApi):
    """Staff (session or `Authorization: Token KEY`) send a file on a ticket they can see."""

    permission_classes = [IsAdminUser]

    class InputSerializer(UploadSerializer):
        pass

    class OutputSerializer(MessageSerializer):
        author = serializers.SerializerMethodField()

        class Meta(MessageSerializer.Meta):
            fields = [*MessageSerializer.Meta.fields, "author"]

        def get_author(self, message: Message) -> str | None:
            return staff_display_name(message.author)

    @extend_schema(
        request={"multipart/form-data": InputSerializer},
        responses={201: OutputSerializer, **errors(409, 413, 415)},
    )
    def post(self, request: Request, ticket_id: int) -> Response:
        """Send an image or PDF to the customer (multipart `file`, optional `text`)."""
        ticket = ticket_get_visible(user=request.user, ticket_id=ticket_id)
        serializer = self.InputSerializer(data=upload_data(request, self.upload_limiter))
        serializer.is_valid(raise_exception=True)
        message = ticket_attachment_post(
            ticket=ticket,
            actor=request.user,
            upload=serializer.validated_data["file"],
            text=serializer.validated_data["text"],
        )
        return Response(self.OutputSerializer(message).data, status=status.HTTP_201_CREATED)


class AttachmentDownloadApi(APIView):
    """The file, to the conversation's participants only; anyone else gets 404."""

    # A customer's Bearer token, or a staff session or API token.
    authentication_classes = [
        ConversationTokenAuthentication,
        TokenAuthentication,
        SessionAuthentication,
    ]
    # Decided per attachment by `attachment_get_readable`, which answers 404 to everyone else.
    permission_classes = [AllowAny]

    @extend_schema(
        # The type detected from the file's bytes when it was sent.
        responses={(200, kind): bytes for kind in settings.ATTACHMENT_CONTENT_TYPES}
    )
    def get(self, request: Request, attachment_id: int) -> FileResponse:
        """Serve an attachment: images inline, PDFs as a download, never sniffed or cached
        by shared caches."""
        conversation = request.auth if isinstance(request.auth, Conversation) else None
        attachment = attachment_get_readable(
            attachment_id=attachment_id, conversation=conversation, user=request.user
        )
        return attachment_response(attachment)


def attachment_response(attachment: Attachment) -> FileResponse:
    """A streaming response for a stored attachment with safe headers."""
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError as exc:
        raise NotFound("No such attachment.") from exc
    response = FileResponse(
        handle,
        content_type=attachment.content_type,
        as_attachment=not attachment.content_type.startswith("image/"),
        filename=attachment.name,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private"
    response["Vary"] = "Authorization, Cookie"
    # Opened on its own (not through the widget), the file may run nothing.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response

"""Attachment endpoints under /api/v1/ (docs/protocol.md, docs/desk.md)."""

from django.urls import URLPattern, URLResolver, path

from apps.widget import attachment_api

urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "conversations/<uuid:conversation_id>/attachments/",
        attachment_api.ConversationAttachmentCreateApi.as_view(),
        name="conversation-attachment-create",
    ),
    path(
        "tickets/<int:ticket_id>/attachments/",
        attachment_api.TicketAttachmentCreateApi.as_view(),
        name="ticket-attachment-create",
    ),
    path(
        "attachments/<int:attachment_id>/",
        attachment_api.AttachmentDownloadApi.as_view(),
        name="attachment-download",
    ),
]

"""Admin for the desk: canned replies, and the desk's records (notes, drafts) to read."""

from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.desk.models import CannedReply, DraftReply, InternalNote


@admin.register(CannedReply)
class CannedReplyAdmin(admin.ModelAdmin[CannedReply]):
    list_display = ["title", "pool", "active", "updated_at"]
    list_filter = ["pool", "active"]
    search_fields = ["title", "text"]
    fieldsets = [
        (
            None,
            {
                "fields": ["pool", "title", "text", "active"],
                "description": "Placeholders: {customer_name}, {agent_name}, {pool_name}, "
                "{ticket_id}. The desk fills them in before the agent edits and sends.",
            },
        )
    ]


@admin.register(InternalNote)
class InternalNoteAdmin(ReadOnlyAdmin):
    list_display = ["ticket", "author", "created_at"]
    search_fields = ["text"]


@admin.register(DraftReply)
class DraftReplyAdmin(ReadOnlyAdmin):
    list_display = [
        "ticket",
        "status",
        "model",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "created_at",
    ]
    list_filter = ["status", "model"]

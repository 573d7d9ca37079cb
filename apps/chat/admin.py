from django.contrib import admin

from apps.chat.models import Conversation, ConversationEvent, Customer, Message
from apps.core.admin import ReadOnlyAdmin


class ChatHistoryAdmin(ReadOnlyAdmin):
    """Chat history: staff read it here and act on it through the desk."""

    superuser_can_delete = True


class MessageInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Message
    fields = ("created_at", "sender", "text", "client_id")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin[Customer]):
    list_display = ["__str__", "email", "created_at"]
    search_fields = ["name", "email"]


@admin.register(Conversation)
class ConversationAdmin(ChatHistoryAdmin):
    list_display = ["id", "customer", "last_seq", "created_at", "updated_at"]
    search_fields = ["id", "customer__name", "customer__email"]
    exclude = ["token_hash"]
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(ChatHistoryAdmin):
    list_display = ["id", "conversation", "sender", "text", "created_at"]
    list_filter = ["sender"]
    search_fields = ["text"]


@admin.register(ConversationEvent)
class ConversationEventAdmin(ChatHistoryAdmin):
    list_display = ["conversation", "seq", "type", "created_at"]
    list_filter = ["type"]

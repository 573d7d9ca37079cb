from django.contrib import admin

from apps.chat.models import Conversation, ConversationEvent, Customer, Message, Ticket


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Chat history is evidence: staff read it here and change it only through the desk."""

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return request.user.is_superuser


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
class ConversationAdmin(ReadOnlyAdmin):
    list_display = ["id", "customer", "last_seq", "created_at", "updated_at"]
    search_fields = ["id", "customer__name", "customer__email"]
    exclude = ["token_hash"]
    inlines = [MessageInline]


@admin.register(Ticket)
class TicketAdmin(ReadOnlyAdmin):
    list_display = ["id", "status", "pool", "conversation", "created_at", "updated_at"]
    list_filter = ["status", "pool"]
    date_hierarchy = "created_at"


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ["id", "conversation", "sender", "text", "created_at"]
    list_filter = ["sender"]
    search_fields = ["text"]


@admin.register(ConversationEvent)
class ConversationEventAdmin(ReadOnlyAdmin):
    list_display = ["conversation", "seq", "type", "created_at"]
    list_filter = ["type"]

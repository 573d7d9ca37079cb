"""Tickets and their activity, read-only: staff act on tickets through the desk."""

from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.tickets.models import Ticket, TicketActivity


@admin.register(Ticket)
class TicketAdmin(ReadOnlyAdmin):
    superuser_can_delete = True  # like the conversation it belongs to

    list_display = [
        "id",
        "status",
        "pool",
        "assignee",
        "sla_breached_at",
        "created_at",
        "updated_at",
    ]
    list_filter = ["status", "pool", "human_requested"]
    date_hierarchy = "created_at"


@admin.register(TicketActivity)
class TicketActivityAdmin(ReadOnlyAdmin):
    list_display = ["ticket", "kind", "actor", "pool", "created_at"]
    list_filter = ["kind", "pool"]
    date_hierarchy = "created_at"

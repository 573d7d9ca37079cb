"""Admin for pools, their members and capacities, canned replies, and the desk's records."""

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest

from apps.core.admin import ReadOnlyAdmin
from apps.pools.models import (
    AgentProfile,
    CannedReply,
    DraftReply,
    InternalNote,
    Pool,
    PoolMembership,
)
from apps.pools.services import agent_queues_fill, pool_assign_waiting


class PoolMembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = PoolMembership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Pool)
class PoolAdmin(admin.ModelAdmin[Pool]):
    list_display = ["name", "slug", "active", "first_response_minutes", "required_fields"]
    list_filter = ["active"]
    search_fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [PoolMembershipInline]

    def save_related(
        self,
        request: HttpRequest,
        form: ModelForm[Pool],
        formsets: list[BaseInlineFormSet[Any, Any, Any]],
        change: bool,
    ) -> None:
        super().save_related(request, form, formsets, change)
        # New members may have room for tickets waiting in the queue.
        pool_assign_waiting(pool=form.instance)


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


class AgentProfileInline(admin.StackedInline):  # type: ignore[type-arg]
    model = AgentProfile
    can_delete = False
    fields = ["capacity", "presence", "sockets", "last_seen_at", "offline_since"]
    readonly_fields = ["presence", "sockets", "last_seen_at", "offline_since"]
    verbose_name = verbose_name_plural = "agent capacity and presence"


class UserPoolMembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = PoolMembership
    extra = 1
    verbose_name_plural = "pools this user works"


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class StaffUserAdmin(UserAdmin):  # type: ignore[type-arg]
    """Users, with the pools they work and their capacity."""

    inlines = [AgentProfileInline, UserPoolMembershipInline]

    def save_related(
        self,
        request: HttpRequest,
        form: ModelForm[Any],
        formsets: list[BaseInlineFormSet[Any, Any, Any]],
        change: bool,
    ) -> None:
        super().save_related(request, form, formsets, change)
        agent_queues_fill(user=form.instance)


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

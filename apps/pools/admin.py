"""Admin for pools, their members and capacities."""

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest

from apps.pools.models import AgentProfile, Intent, Pool, PoolMembership
from apps.pools.services import agent_queues_fill, pool_assign_waiting


class PoolMembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = PoolMembership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Intent)
class IntentAdmin(admin.ModelAdmin[Intent]):
    """Intents as data: an intent belongs to one pool; moving it to another pool takes effect
    in the local model trained next (a model version keeps the intents it was trained with)."""

    list_display = ["slug", "pool", "description"]
    list_filter = ["pool"]
    search_fields = ["slug", "description"]
    list_select_related = ["pool"]


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

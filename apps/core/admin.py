"""Admin building blocks shared by the apps."""

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from apps.core.errors import ApplicationError
from apps.core.users import staff_user


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Records that are evidence: readable in the admin, never added or changed there.

    `superuser_can_delete` allows a superuser to delete (e.g. to honour an erasure request);
    append-only records such as routing decisions leave it False.
    """

    superuser_can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.superuser_can_delete and bool(request.user.is_superuser)


def version_activate_action(
    model_admin: admin.ModelAdmin,  # type: ignore[type-arg]
    request: HttpRequest,
    queryset: "QuerySet[Any]",
    *,
    activate: Callable[..., Any],
    nothing_active: str,
) -> None:
    """An admin action's body that activates exactly one selected version through `activate`
    (a service taking version=, actor=, note= and returning an activation with `version` and
    `previous_id`), reporting the switch or the service's refusal."""
    versions: list[Model] = list(queryset[:2])
    if len(versions) != 1:
        model_admin.message_user(
            request, "Select exactly one version to activate.", messages.WARNING
        )
        return
    try:
        activation = activate(version=versions[0], actor=staff_user(request), note="admin action")
    except ApplicationError as exc:
        model_admin.message_user(request, exc.message, messages.ERROR)
        return
    was = f"v{activation.previous_id}" if activation.previous_id else nothing_active
    model_admin.message_user(
        request, f"{activation.version} is now active (was {was}).", messages.SUCCESS
    )

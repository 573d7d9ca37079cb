"""Admin building blocks shared by the apps."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest


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

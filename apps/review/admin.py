"""Admin for routing labels (corrections by agents and reviewers)."""

from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.review.models import RoutingLabel


@admin.register(RoutingLabel)
class RoutingLabelAdmin(ReadOnlyAdmin):
    list_display = ["ticket", "source", "previous_pool", "pool", "author", "created_at"]
    list_filter = ["source", "pool"]
    search_fields = ["text", "reason"]
    date_hierarchy = "created_at"

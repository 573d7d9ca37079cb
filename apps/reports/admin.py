"""Alert rules (editable data) and alerts (read-only, acknowledged by an action) in the admin."""

from django.contrib import admin, messages
from django.db.models import Case, QuerySet, Value, When
from django.http import HttpRequest

from apps.core.admin import ReadOnlyAdmin
from apps.core.errors import Conflict
from apps.core.users import staff_user
from apps.reports.alerts import alert_acknowledge
from apps.reports.models import Alert, AlertRule


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin[AlertRule]):
    list_display = [
        "name",
        "metric",
        "comparison",
        "threshold",
        "window_minutes",
        "min_sample",
        "enabled",
    ]
    list_editable = ["threshold", "window_minutes", "min_sample", "enabled"]
    list_filter = ["enabled", "metric"]


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    """Open alerts first; "Acknowledge" records who saw them and when."""

    list_display = [
        "opened_at",
        "status",
        "rule",
        "message",
        "last_value",
        "acknowledged_by",
        "acknowledged_at",
        "resolved_at",
    ]
    list_filter = ["status", "metric", "rule"]
    list_select_related = ["rule", "acknowledged_by"]
    date_hierarchy = "opened_at"
    actions = ["acknowledge"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Alert]:
        # The alerts that need a person first: open, then acknowledged, then resolved.
        rank = Case(
            When(status=Alert.Status.OPEN, then=Value(0)),
            When(status=Alert.Status.ACKNOWLEDGED, then=Value(1)),
            default=Value(2),
        )
        return super().get_queryset(request).order_by(rank, "-opened_at")

    def has_acknowledge_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("reports.change_alert"))

    @admin.action(description="Acknowledge the selected alerts", permissions=["acknowledge"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        done = 0
        for alert in queryset:
            try:
                alert_acknowledge(alert=alert, actor=staff_user(request))
                done += 1
            except Conflict:
                pass  # resolved or acknowledged meanwhile: nothing to do
        self.message_user(request, f"{done} alert(s) acknowledged.", messages.SUCCESS)

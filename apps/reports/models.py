"""Operational alerts: rules (data, editable in the admin) and the alerts they open."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import TimeStampedModel


class AlertRule(TimeStampedModel):
    """A figure over a rolling window compared with a threshold; seeded with defaults."""

    class Metric(models.TextChoices):
        LATENCY_P95_MS = "latency_p95_ms", "Routing latency p95 per ticket (ms)"
        LOW_CONFIDENCE_SHARE = (
            "low_confidence_share",
            "Share of model decisions below the accept threshold (0 to 1)",
        )
        ESCALATION_SHARE = "escalation_share", "Share of routings escalated to the larger model"
        COST_PER_REQUEST_USD = "cost_per_request_usd", "Routing cost per ticket routing (USD)"
        PROVIDER_ERROR_RATE = "provider_error_rate", "Share of LLM calls the provider failed"
        REVIEW_OLDEST_MINUTES = (
            "review_oldest_minutes",
            "Age of the oldest open review item (minutes; window not used)",
        )
        SLA_BREACHES = "sla_breaches", "First-response SLA breaches in the window"

    class Comparison(models.TextChoices):
        GT = "gt", "greater than"
        GTE = "gte", "at least"
        LT = "lt", "less than"
        LTE = "lte", "at most"

    name = models.CharField(max_length=100, unique=True)
    metric = models.CharField(max_length=32, choices=Metric.choices)
    comparison = models.CharField(max_length=8, choices=Comparison.choices, default=Comparison.GT)
    threshold = models.FloatField()
    window_minutes = models.PositiveIntegerField(
        default=15, help_text="The rolling window the figure is computed over."
    )
    min_sample = models.PositiveIntegerField(
        default=20,
        help_text="Below this many observations in the window the rule is not judged: an open "
        "alert stays open, none opens.",
    )
    enabled = models.BooleanField(default=True, db_index=True)
    description = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(window_minutes__gte=1), name="alert_window_positive")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.metric} {self.comparison} {self.threshold:g})"


class Alert(models.Model):
    """One breach of a rule, from opening to resolution. At most one unresolved per rule."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    rule = models.ForeignKey(AlertRule, on_delete=models.PROTECT, related_name="alerts")
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    # The rule as it was and the figure that opened the alert (the rule may be edited later).
    metric = models.CharField(max_length=32, choices=AlertRule.Metric.choices)
    comparison = models.CharField(max_length=8, choices=AlertRule.Comparison.choices)
    threshold = models.FloatField()
    window_minutes = models.PositiveIntegerField()
    value = models.FloatField()
    sample = models.PositiveIntegerField()
    message = models.CharField(max_length=300)
    # The newest figure while it stays open.
    last_value = models.FloatField()
    last_evaluated_at = models.DateTimeField()
    opened_at = models.DateTimeField(db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule"],
                condition=Q(status__in=["open", "acknowledged"]),
                name="one_unresolved_alert_per_rule",
            ),
            models.CheckConstraint(
                condition=Q(status="resolved", resolved_at__isnull=False)
                | (~Q(status="resolved") & Q(resolved_at__isnull=True)),
                name="alert_resolved_at_iff_resolved",
            ),
            models.CheckConstraint(
                condition=Q(status="open", acknowledged_at__isnull=True) | ~Q(status="open"),
                name="open_alert_not_acknowledged",
            ),
        ]
        indexes = [models.Index(fields=["status", "opened_at"])]

    def __str__(self) -> str:
        return f"{self.rule.name}: {self.status}"


class Report(models.Model):
    """No table: carries the permission to see the manager reports, their exports and the
    decision receipts behind them (`reports.view_reports`, held by the Managers group)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_reports", "Can see the manager reports and their exports")]

    def __str__(self) -> str:
        return "reports"

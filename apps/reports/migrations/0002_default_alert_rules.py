"""Seed the alert rules with the defaults from production practice (all editable in the admin)."""

from django.db import migrations

DEFAULT_RULES = [
    # name, metric, comparison, threshold, window minutes, min sample, description
    (
        "Routing latency p95",
        "latency_p95_ms",
        "gt",
        500.0,
        15,
        20,
        "95% of ticket routings should finish within 500 ms.",
    ),
    (
        "Low-confidence decisions",
        "low_confidence_share",
        "gt",
        0.2,
        60,
        20,
        "More than 20% of model decisions below the accept threshold (0.7).",
    ),
    (
        "Escalations",
        "escalation_share",
        "gt",
        0.05,
        60,
        20,
        "More than 5% of routings needed the larger model.",
    ),
    (
        "Cost per request",
        "cost_per_request_usd",
        "gt",
        0.001,
        60,
        20,
        "Routing one ticket costs more than $0.001 on average.",
    ),
    (
        "Provider errors",
        "provider_error_rate",
        "gt",
        0.05,
        15,
        10,
        "More than 5% of LLM calls failed (timeout, 429, 5xx, 529, malformed).",
    ),
    (
        "Review queue age",
        "review_oldest_minutes",
        "gt",
        30.0,
        15,
        0,
        "A ticket has waited in the review queue for more than 30 minutes.",
    ),
    (
        "SLA breaches",
        "sla_breaches",
        "gt",
        0.0,
        60,
        0,
        "A first reply was overdue in the last hour.",
    ),
]


def seed(apps, schema_editor):
    AlertRule = apps.get_model("reports", "AlertRule")
    for name, metric, comparison, threshold, window, min_sample, description in DEFAULT_RULES:
        AlertRule.objects.get_or_create(
            name=name,
            defaults={
                "metric": metric,
                "comparison": comparison,
                "threshold": threshold,
                "window_minutes": window,
                "min_sample": min_sample,
                "description": description,
            },
        )


def unseed(apps, schema_editor):
    AlertRule = apps.get_model("reports", "AlertRule")
    AlertRule.objects.filter(
        name__in=[rule[0] for rule in DEFAULT_RULES], alerts__isnull=True
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("reports", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]

"""Periodic alert evaluation (beat: every minute)."""

from celery import shared_task

from apps.reports.alerts import alerts_evaluate


@shared_task(acks_late=True)
def alerts_evaluate_task() -> None:
    """Judge the alert rules over their windows; open and resolve alerts."""
    alerts_evaluate()

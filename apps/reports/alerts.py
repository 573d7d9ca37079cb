"""Alert services: judge every enabled rule over its rolling window, open an alert when its
figure crosses the threshold (logged and sent to the `alert.opened` webhooks), resolve it when
the figure is back, and let a person acknowledge it. Run by the beat task
`alerts_evaluate_task` (every minute)."""

import logging
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.errors import Conflict
from apps.core.users import StaffUser
from apps.reports.alert_selectors import AlertFigure, alert_figure
from apps.reports.models import Alert, AlertRule
from apps.webhooks.services import webhook_event_emit

logger = logging.getLogger(__name__)

Status = Alert.Status
UNRESOLVED = (Status.OPEN, Status.ACKNOWLEDGED)
COMPARE: dict[str, Callable[[float, float], bool]] = {
    AlertRule.Comparison.GT: operator.gt,
    AlertRule.Comparison.GTE: operator.ge,
    AlertRule.Comparison.LT: operator.lt,
    AlertRule.Comparison.LTE: operator.le,
}
SYMBOL = {"gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}


@dataclass
class AlertEvaluation:
    """What one evaluation changed."""

    opened: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)


def _formatted(metric: str, value: float) -> str:
    if metric == AlertRule.Metric.LATENCY_P95_MS:
        return f"{value:.0f} ms"
    if metric == AlertRule.Metric.COST_PER_REQUEST_USD:
        return f"${value:.5f}"
    if metric == AlertRule.Metric.REVIEW_OLDEST_MINUTES:
        return f"{value:.0f} min"
    if metric == AlertRule.Metric.SLA_BREACHES:
        return f"{value:.0f}"
    return f"{value:.1%}"


def alert_message(*, rule: AlertRule, value: float, sample: int) -> str:
    """One line for people: the figure, the threshold it crossed, the window and sample."""
    comparison = SYMBOL[rule.comparison]
    window = (
        ""
        if rule.metric == AlertRule.Metric.REVIEW_OLDEST_MINUTES
        else f" over the last {rule.window_minutes} min"
    )
    return (
        f"{rule.name}: {_formatted(rule.metric, value)} {comparison} "
        f"{_formatted(rule.metric, rule.threshold)}{window} (n={sample})"
    )[:300]


def alert_payload(*, alert: Alert) -> dict[str, Any]:
    """`alert.opened`: the rule, the figure and the threshold (no ticket data)."""
    return {
        "alert": alert.pk,
        "rule": alert.rule.name,
        "metric": alert.metric,
        "comparison": alert.comparison,
        "threshold": alert.threshold,
        "value": alert.value,
        "sample": alert.sample,
        "window_minutes": alert.window_minutes,
        "message": alert.message,
        "opened_at": alert.opened_at.isoformat(),
    }


def _open(rule: AlertRule, figure: AlertFigure, now: datetime) -> Alert | None:
    assert figure.value is not None
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                rule=rule,
                metric=rule.metric,
                comparison=rule.comparison,
                threshold=rule.threshold,
                window_minutes=rule.window_minutes,
                value=figure.value,
                sample=figure.sample,
                message=alert_message(rule=rule, value=figure.value, sample=figure.sample),
                last_value=figure.value,
                last_evaluated_at=now,
                opened_at=now,
            )
            webhook_event_emit(event="alert.opened", payload=alert_payload(alert=alert))
    except IntegrityError:
        return None  # another evaluation opened it meanwhile (one unresolved per rule)
    logger.warning("alert opened: %s", alert.message)
    return alert


def _resolve(alert: Alert, now: datetime, why: str) -> Alert:
    Alert.objects.filter(pk=alert.pk, status__in=UNRESOLVED).update(
        status=Status.RESOLVED, resolved_at=now, last_evaluated_at=now
    )
    alert.refresh_from_db()
    logger.info("alert resolved (%s): %s", why, alert.message)
    return alert


def alerts_evaluate(*, now: datetime | None = None) -> AlertEvaluation:
    """Judge every enabled rule over its window: open, update or resolve its alert."""
    now = now or timezone.now()
    result = AlertEvaluation()
    current = {alert.rule_id: alert for alert in Alert.objects.filter(status__in=UNRESOLVED)}
    for rule in AlertRule.objects.all():
        alert = current.get(rule.pk)
        if not rule.enabled:
            if alert is not None:
                result.resolved.append(_resolve(alert, now, "rule disabled"))
            continue
        figure = alert_figure(
            metric=rule.metric, since=now - timedelta(minutes=rule.window_minutes), until=now
        )
        if figure.value is None or figure.sample < rule.min_sample:
            continue  # too little to judge either way: an open alert stays open
        breached = COMPARE[rule.comparison](figure.value, rule.threshold)
        if breached and alert is None:
            opened = _open(rule, figure, now)
            if opened is not None:
                result.opened.append(opened)
        elif breached and alert is not None:
            Alert.objects.filter(pk=alert.pk).update(last_value=figure.value, last_evaluated_at=now)
        elif alert is not None:
            result.resolved.append(_resolve(alert, now, "condition cleared"))
    return result


def alert_acknowledge(*, alert: Alert, actor: StaffUser) -> Alert:
    """A person has seen an open alert: record who and when (it still resolves by itself)."""
    now = timezone.now()
    updated = Alert.objects.filter(pk=alert.pk, status=Status.OPEN).update(
        status=Status.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=actor
    )
    if not updated:
        raise Conflict("Only an open alert can be acknowledged.")
    alert.refresh_from_db()
    logger.info("alert acknowledged by %s: %s", actor.get_username(), alert.message)
    return alert

"""Alerts judged over rolling windows of real routing: tickets routed through the pipeline with
the real SDK against the Messages API stand-in made slow, costly or failing; alerts open once,
are logged, go to webhooks, resolve when good routing fills the window, and are acknowledged in
the admin."""

import logging
from datetime import timedelta
from itertools import count

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from apps.chat.models import Message
from apps.chat.services import conversation_create
from apps.flows.messages import message_post
from apps.flows.routing import ticket_route
from apps.orchestrator.models import RoutingDecision
from apps.orchestrator.services import text_route_dry_run
from apps.pools.services import tickets_sla_check
from apps.reports.alert_selectors import alert_figure, alert_list_open
from apps.reports.alerts import alert_acknowledge, alerts_evaluate
from apps.reports.models import Alert, AlertRule
from apps.reports.tasks import alerts_evaluate_task
from apps.tickets.models import Ticket
from apps.webhooks.models import WebhookEndpoint
from tests.fakes import messages_api as api
from tests.fakes.fixtures import messages_api  # noqa: F401  (a fixture)
from tests.orchestrator.conftest import llm as orchestrator_llm  # noqa: F401  (a fixture)
from tests.orchestrator.conftest import route_reply
from tests.webhooks.receiver import WebhookReceiver, signature_valid

pytestmark = pytest.mark.django_db
Metric = AlertRule.Metric
_texts = count()


@pytest.fixture
def standin(request):
    """The Messages API stand-in behind the real SDK (the orchestrator's `llm` fixture)."""
    return request.getfixturevalue("orchestrator_llm")


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()  # the decision cache would answer repeated texts without the LLM


def rule(metric: str, **changes) -> AlertRule:
    """The seeded default rule for `metric`, with `changes` saved (rules are data)."""
    found = AlertRule.objects.get(metric=metric)
    for name, value in changes.items():
        setattr(found, name, value)
    found.save()
    return found


def route_tickets(n: int, *, pool: str = "billing") -> list[Ticket]:
    """n customers write; each ticket goes through the real pipeline (LLM tier: the stand-in)."""
    tickets = []
    for _ in range(n):
        conversation = conversation_create().conversation
        message_post(
            conversation=conversation,
            text=f"Question number {next(_texts)} about my {pool} matter",
            sender=Message.Sender.CUSTOMER,
        )
        ticket = Ticket.objects.get(conversation=conversation)
        ticket_route(ticket=ticket)
        tickets.append(ticket)
    return tickets


def an_hour_passes() -> None:
    """Everything routed so far leaves the rolling windows (decisions are append-only rows with
    auto timestamps; moving them back is how the clock moves here)."""
    earlier = timezone.now() - timedelta(hours=2)
    RoutingDecision.objects.update(created_at=earlier)


def test_default_rules_are_seeded_from_production_practice():
    rules = {r.metric: (r.comparison, r.threshold, r.enabled) for r in AlertRule.objects.all()}
    assert rules == {
        Metric.LATENCY_P95_MS: ("gt", 500.0, True),
        Metric.LOW_CONFIDENCE_SHARE: ("gt", 0.2, True),
        Metric.ESCALATION_SHARE: ("gt", 0.05, True),
        Metric.COST_PER_REQUEST_USD: ("gt", 0.001, True),
        Metric.PROVIDER_ERROR_RATE: ("gt", 0.05, True),
        Metric.REVIEW_OLDEST_MINUTES: ("gt", 30.0, True),
        Metric.SLA_BREACHES: ("gt", 0.0, True),
    }


def test_slow_provider_opens_the_latency_alert_once_and_it_resolves_when_routing_is_fast(
    pools, standin, caplog
):
    rule(Metric.LATENCY_P95_MS, min_sample=3)
    standin.default = lambda body: api.delay(0.6, route_reply("billing", 0.93))
    route_tickets(3)

    with caplog.at_level(logging.WARNING, logger="apps.reports.alerts"):
        result = alerts_evaluate()
    [alert] = result.opened
    assert alert.metric == Metric.LATENCY_P95_MS
    assert alert.status == Alert.Status.OPEN
    assert alert.value >= 600
    assert alert.sample == 3
    assert "Routing latency p95" in alert.message
    assert "> 500 ms over the last 15 min (n=3)" in alert.message
    assert any("alert opened" in r.getMessage() for r in caplog.records)
    assert list(alert_list_open()) == [alert]

    # Still slow: the same alert stays open, no second one.
    assert alerts_evaluate().opened == []
    assert Alert.objects.count() == 1

    an_hour_passes()
    standin.default = lambda body: route_reply("billing", 0.93)
    route_tickets(3)
    result = alerts_evaluate()
    assert [a.pk for a in result.resolved] == [alert.pk]
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED
    assert alert.resolved_at is not None
    assert list(alert_list_open()) == []


def test_big_token_usage_opens_the_cost_alert(pools, standin):
    rule(Metric.COST_PER_REQUEST_USD, min_sample=3)
    standin.default = lambda body: api.tool_use(
        {
            "action": "route",
            "pool": "billing",
            "confidence": 0.93,
            "reason": "r",
            "missing_fields": [],
        },
        input_tokens=2500,
        output_tokens=200,
    )
    route_tickets(3)

    [alert] = alerts_evaluate().opened
    assert alert.metric == Metric.COST_PER_REQUEST_USD
    # 2,500 in at $1 + 200 out at $5 per MTok = $0.0035 per routing.
    assert alert.value == pytest.approx(0.0035)

    an_hour_passes()
    standin.default = lambda body: route_reply("billing", 0.93)  # 350 in, 40 out: $0.00055
    route_tickets(3)
    assert [a.pk for a in alerts_evaluate().resolved] == [alert.pk]


def test_failing_provider_opens_the_error_rate_alert(pools, standin):
    rule(Metric.PROVIDER_ERROR_RATE, min_sample=3)
    standin.default = lambda body: api.error(529, "overloaded_error")
    tickets = route_tickets(2)
    assert {t.status for t in Ticket.objects.filter(pk__in=[t.pk for t in tickets])} == {
        Ticket.Status.IN_REVIEW
    }

    opened = {a.metric: a for a in alerts_evaluate().opened}
    alert = opened[Metric.PROVIDER_ERROR_RATE]
    # Both models failed for both tickets: 4 calls, 4 failures.
    assert (alert.value, alert.sample) == (1.0, 4)

    an_hour_passes()
    standin.default = lambda body: route_reply("billing", 0.93)
    route_tickets(3)
    assert alert.pk in [a.pk for a in alerts_evaluate().resolved]


def test_doubtful_routing_opens_the_low_confidence_and_escalation_alerts(pools, standin):
    rule(Metric.LOW_CONFIDENCE_SHARE, min_sample=3)
    rule(Metric.ESCALATION_SHARE, min_sample=3)
    # The router is unsure (0.6): the larger model re-evaluates and is sure.
    standin.default = lambda body: route_reply(
        "billing", 0.95 if body["model"] == "claude-sonnet-4-6" else 0.6
    )
    route_tickets(3)

    opened = {a.metric: a for a in alerts_evaluate().opened}
    assert set(opened) == {Metric.LOW_CONFIDENCE_SHARE, Metric.ESCALATION_SHARE}
    assert opened[Metric.ESCALATION_SHARE].value == 1.0
    # 3 router decisions at 0.6 and 3 escalation decisions at 0.95.
    assert opened[Metric.LOW_CONFIDENCE_SHARE].value == pytest.approx(0.5)


def test_too_few_routings_are_not_judged(pools, standin):
    standin.default = lambda body: api.delay(0.6, route_reply("billing", 0.93))
    route_tickets(2)  # the default rule wants 20
    assert alerts_evaluate().opened == []
    assert (
        alert_figure(
            metric=Metric.LATENCY_P95_MS,
            since=timezone.now() - timedelta(minutes=15),
            until=timezone.now(),
        ).sample
        == 2
    )


def test_dry_runs_do_not_count(pools, standin):
    rule(Metric.LATENCY_P95_MS, min_sample=1)
    standin.default = lambda body: api.delay(0.6, route_reply("billing", 0.93))
    text_route_dry_run(text="Why was I charged twice?")
    assert alerts_evaluate().opened == []


def test_a_window_counts_what_happened_at_its_start_and_leaves_its_end_to_the_next(pools, standin):
    """[since, until), like the reports' periods: a routing or a breach at the edge between two
    evaluations counts in exactly one of them."""
    standin.default = lambda body: route_reply("billing", 0.93)
    [ticket] = route_tickets(1)
    edge = timezone.now().replace(microsecond=0) - timedelta(minutes=30)
    RoutingDecision.objects.update(created_at=edge)
    Ticket.objects.filter(pk=ticket.pk).update(sla_breached_at=edge)
    before = {"since": edge - timedelta(minutes=15), "until": edge}
    after = {"since": edge, "until": edge + timedelta(minutes=15)}

    assert alert_figure(metric=Metric.LATENCY_P95_MS, **before).sample == 0
    assert alert_figure(metric=Metric.LATENCY_P95_MS, **after).sample == 1
    assert alert_figure(metric=Metric.SLA_BREACHES, **before).value == 0
    assert alert_figure(metric=Metric.SLA_BREACHES, **after).value == 1


def test_an_old_review_item_and_an_sla_breach_open_alerts(pools, standin):
    standin.default = lambda body: route_reply("billing", 0.3)  # → the review queue
    [in_review] = route_tickets(1)
    standin.default = lambda body: route_reply("billing", 0.93)
    [queued] = route_tickets(1)
    assert Ticket.objects.get(pk=queued.pk).status == Ticket.Status.QUEUED
    assert alerts_evaluate().opened == []

    later = timezone.now() + timedelta(days=1)  # nobody looked at either for a day
    tickets_sla_check(now=later)
    # Evaluated a moment after the check found the breach: a window ends before its `now`.
    opened = {a.metric: a for a in alerts_evaluate(now=later + timedelta(seconds=1)).opened}
    assert set(opened) == {Metric.REVIEW_OLDEST_MINUTES, Metric.SLA_BREACHES}
    assert opened[Metric.REVIEW_OLDEST_MINUTES].value >= 24 * 60
    assert opened[Metric.SLA_BREACHES].value == 1
    assert in_review.review_items.exists()


def test_disabling_a_rule_resolves_its_alert(pools, standin):
    found = rule(Metric.LATENCY_P95_MS, min_sample=1)
    standin.default = lambda body: api.delay(0.6, route_reply("billing", 0.93))
    route_tickets(1)
    [alert] = alerts_evaluate().opened
    found.enabled = False
    found.save()
    assert [a.pk for a in alerts_evaluate().resolved] == [alert.pk]


def test_only_one_unresolved_alert_per_rule_is_allowed(pools, standin):
    from django.db import IntegrityError, transaction

    rule(Metric.LATENCY_P95_MS, min_sample=1)
    standin.default = lambda body: api.delay(0.6, route_reply("billing", 0.93))
    route_tickets(1)
    [alert] = alerts_evaluate().opened
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(
            rule=alert.rule,
            metric=alert.metric,
            comparison=alert.comparison,
            threshold=alert.threshold,
            window_minutes=alert.window_minutes,
            value=1,
            sample=1,
            message="again",
            last_value=1,
            last_evaluated_at=alert.opened_at,
            opened_at=alert.opened_at,
        )


def test_an_opened_alert_is_sent_to_webhooks_signed(
    pools, standin, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]  # the receiver is internal: allowed by name
    rule(Metric.LATENCY_P95_MS, min_sample=3)
    standin.default = lambda body: api.delay(0.6, route_reply("billing", 0.93))
    route_tickets(3)
    with WebhookReceiver() as receiver:
        endpoint = WebhookEndpoint.objects.create(
            name="Pager", url=receiver.url, events=["alert.opened"]
        )
        with django_capture_on_commit_callbacks(execute=True):
            alerts_evaluate_task.apply()
        [request] = receiver.received
    assert signature_valid(request, endpoint.secret)
    event = request.json
    alert = Alert.objects.get()
    assert event["type"] == "alert.opened"
    assert event["data"]["alert"] == alert.pk
    assert event["data"]["metric"] == "latency_p95_ms"
    assert event["data"]["threshold"] == 500.0
    assert event["data"]["value"] == alert.value


def test_a_manager_acknowledges_an_alert_in_the_admin_and_the_dashboard_shows_it(
    pools, standin, admin_client, admin_user
):
    rule(Metric.LATENCY_P95_MS, min_sample=1)
    standin.default = lambda body: api.delay(0.6, route_reply("billing", 0.93))
    route_tickets(1)
    [alert] = alerts_evaluate().opened

    changelist = reverse("admin:reports_alert_changelist")
    page = admin_client.get(changelist)
    assert page.status_code == 200
    assert "Routing latency p95" in page.content.decode()
    response = admin_client.post(
        changelist, {"action": "acknowledge", "_selected_action": [alert.pk]}
    )
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.status == Alert.Status.ACKNOWLEDGED
    assert alert.acknowledged_by == admin_user
    assert alert.acknowledged_at is not None
    assert list(alert_list_open()) == [alert]  # acknowledged is still shown until resolved

    with pytest.raises(Exception, match="Only an open alert"):
        alert_acknowledge(alert=alert, actor=admin_user)

    dashboard = admin_client.get(reverse("reports"))
    html = dashboard.content.decode()
    assert 'data-testid="reports-alerts"' in html
    assert "Acknowledged" in html
    assert "acknowledged by admin" in html


def test_alert_rule_names_are_escaped_on_the_dashboard(pools, standin, admin_client):
    rule(Metric.LATENCY_P95_MS, min_sample=1, name="<script>alert(1)</script>")
    standin.default = lambda body: api.delay(0.6, route_reply("billing", 0.93))
    route_tickets(1)
    alerts_evaluate()
    html = admin_client.get(reverse("reports")).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_viewer_without_the_change_permission_cannot_acknowledge(pools, standin, client):
    from django.contrib.auth.models import Permission

    rule(Metric.LATENCY_P95_MS, min_sample=1)
    standin.default = lambda body: api.delay(0.6, route_reply("billing", 0.93))
    route_tickets(1)
    [alert] = alerts_evaluate().opened
    viewer = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_alert", content_type__app_label="reports")
    )
    client.force_login(viewer)
    changelist = reverse("admin:reports_alert_changelist")
    assert client.get(changelist).status_code == 200
    client.post(changelist, {"action": "acknowledge", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert alert.status == Alert.Status.OPEN

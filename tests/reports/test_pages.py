"""The dashboard and drill-down pages: who may see them, what they show, and that customer text
is escaped."""

import json
import re
from html import unescape

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.flows.demo import demo_seed
from apps.orchestrator.models import RoutingDecision
from apps.reports.selectors import user_can_view_reports
from tests.reports.conftest import END, START

PERIOD = {"from": START.isoformat(), "to": END.isoformat()}
ENDPOINTS = [
    "/reports/",
    "/reports/decisions/",
    "/api/v1/reports/summary/",
    "/api/v1/decisions/",
    "/api/v1/decisions/export/",
    "/api/v1/reports/tickets/export/",
]


@pytest.fixture
def manager_client(manager) -> Client:
    client = Client()
    client.force_login(manager)
    return client


@pytest.mark.parametrize("path", ENDPOINTS)
def test_agents_get_403_on_every_report_page_and_endpoint(db, agent, path):
    client = Client()
    client.force_login(agent)
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", ENDPOINTS)
def test_managers_and_superusers_may_see_every_report(db, manager, path):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    for user in (manager, admin):
        client = Client()
        client.force_login(user)
        assert client.get(path, PERIOD).status_code == 200, (user, path)


def test_reports_need_their_own_permission_not_just_viewing_decisions(db):
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("auditor", password="pw", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(
            codename="view_routingdecision", content_type__app_label="orchestrator"
        )
    )
    client = Client()
    client.force_login(user)
    assert client.get("/reports/", PERIOD).status_code == 403
    user.user_permissions.add(
        Permission.objects.get(codename="view_reports", content_type__app_label="reports")
    )
    user = get_user_model().objects.get(pk=user.pk)  # permissions are cached per instance
    client.force_login(user)
    assert client.get("/reports/", PERIOD).status_code == 200


def test_anonymous_visitors_are_sent_to_log_in(db):
    response = Client().get("/reports/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert Client().get("/api/v1/reports/summary/").status_code in (401, 403)


def test_seed_demo_lets_the_manager_and_no_agent_or_reviewer_see_reports(db):
    demo_seed()
    users = get_user_model().objects
    assert user_can_view_reports(users.get(username="manager"))
    assert user_can_view_reports(users.get(username="admin"))
    assert not user_can_view_reports(users.get(username="reviewer"))
    assert not user_can_view_reports(users.get(username="agent-billing"))


def test_dashboard_shows_the_summary_figures_with_drilldown_links(manager_client, history):
    page = manager_client.get("/reports/", PERIOD)
    assert page.status_code == 200
    html = page.content.decode()
    summary = manager_client.get("/api/v1/reports/summary/", PERIOD).json()
    card = re.search(r'data-testid="card-llm-call" href="([^"]+)">(.*?)</a>', html, re.S)
    assert card is not None
    share = summary["routing"]["llm_call"]["share"]
    assert f"{share * 100:.1f}%" in card.group(2)
    assert f"{summary['routing']['llm_call']['count']} of" in card.group(2)
    # The card's link is the figure's drill-down, in the page's period.
    link = unescape(card.group(1))
    assert link.startswith("/reports/decisions/?")
    for key, value in {**PERIOD, "final": "1", "llm_call": "1"}.items():
        assert f"{key}={value}" in link
    # The charts' data is the same summary, embedded as JSON (not inline script).
    data = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', html, re.S)
    assert data is not None
    embedded = json.loads(data.group(1))["summary"]
    assert embedded["routing"] == summary["routing"]
    assert embedded["cost"] == summary["cost"]
    for chart in (
        "tickets",
        "cost",
        "cost-per-ticket",
        "tokens",
        "shares",
        "confidence",
        "latency",
    ):
        assert f'data-testid="chart-{chart}"' in html
    assert "/static/vendor/chartjs/4.5.1/chart.umd.min.js" in html


def test_drilldown_page_lists_the_receipts_and_escapes_customer_text(manager_client, history):
    decision = next(
        s.decisions[-1]
        for s in history.specs
        if s.template == "llm" and START <= s.created.date() <= END
    )
    RoutingDecision.objects.filter(pk=decision.pk).update(
        redacted='<script>alert("x")</script> my invoice'
    )
    page = manager_client.get("/reports/decisions/", {**PERIOD, "ticket": decision.ticket_id})
    html = page.content.decode()
    assert '<script>alert("x")</script>' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; my invoice" in html
    assert f'data-decision="{decision.pk}"' in html
    # The receipt shows its tier trail, model and export link with the same filters.
    row = re.search(rf'data-decision="{decision.pk}">(.*?)</tr>', html, re.S)
    assert row is not None
    assert "claude-haiku-4-5" in row.group(1)
    assert re.search(r"local</span> \u203a <span[^>]*>llm", row.group(1))
    assert (
        f"/api/v1/decisions/export/?from={START}&amp;to={END}&amp;ticket={decision.ticket_id}"
        in html
    )


def test_drilldown_count_matches_the_figure(manager_client, history):
    summary = manager_client.get("/api/v1/reports/summary/", PERIOD).json()
    rule_hit = summary["routing"]["rule_hit"]
    page = manager_client.get("/reports/decisions/", {**PERIOD, **rule_hit["drill"]})
    count = re.search(r'data-testid="drill-count">(\d+)<', page.content.decode())
    assert count is not None
    assert int(count.group(1)) == rule_hit["count"] > 0


def test_invalid_filters_get_a_400_page_that_says_why(manager_client, db):
    page = manager_client.get("/reports/", {"from": "2026-03-09", "to": "2026-03-01"})
    assert page.status_code == 400
    assert "Must not be after" in page.content.decode()


def test_pool_names_are_escaped_in_the_page_and_its_json(manager_client, history):
    pool = history.pools["billing"]
    pool.name = "</script><img src=x onerror=alert(1)>"
    pool.save(update_fields=["name"])
    html = manager_client.get("/reports/", {**PERIOD, "pool": "billing"}).content.decode()
    assert "<img src=x" not in html
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html

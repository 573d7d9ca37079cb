"""`/metrics`: routing counters and histograms from real routing runs, provider errors from the
real SDK against the Messages API stand-in, queue gauges from the database, access control,
and counters merged across processes (multiprocess mode)."""

import os
import subprocess
import sys
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from apps.chat.models import Message
from apps.chat.services import conversation_create
from apps.flows.messages import message_post
from apps.orchestrator.models import RoutingRule
from apps.tickets.models import Ticket
from tests.fakes import fixtures as fake_fixtures
from tests.fakes import messages_api as api
from tests.orchestrator import conftest as orchestrator_fixtures
from tests.orchestrator.conftest import route_reply
from tests.servers import ROOT

pytestmark = pytest.mark.django_db

# The orchestrator's fixtures (pools, the SDK pointed at the Messages API stand-in).
messages_api = fake_fixtures.messages_api
pools = orchestrator_fixtures.pools
llm = orchestrator_fixtures.llm

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()  # the decision cache would answer a repeated text without the LLM


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client, **headers) -> Samples:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200
    return parse(response.content.decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def open_and_route(text: str, capture) -> Ticket:
    """A customer's first message; routing runs on commit and the counters after its commit."""
    conversation = conversation_create().conversation
    with capture(execute=True):
        message_post(conversation=conversation, text=text, sender=Message.Sender.CUSTOMER)
    return Ticket.objects.get(conversation=conversation)


def test_a_ticket_routed_by_a_rule_counts_its_decision_outcome_and_latency(
    client, pools, django_capture_on_commit_callbacks
):
    RoutingRule.objects.create(name="invoices", pattern="invoice", pool=pools["billing"])
    before = scrape(client)
    ticket = open_and_route("Where is my invoice for March?", django_capture_on_commit_callbacks)
    after = scrape(client)
    assert ticket.status == Ticket.Status.QUEUED
    assert (
        delta(
            before,
            after,
            "supportdesk_routing_decisions_total",
            tier="rules",
            action="route",
            valid="true",
        )
        == 1
    )
    assert (
        delta(
            before,
            after,
            "supportdesk_routing_outcomes_total",
            outcome="route",
            tier="rules",
            dry_run="false",
        )
        == 1
    )
    assert delta(before, after, "supportdesk_routing_latency_seconds_count", tier="rules") == 1
    # Nothing went to a model: no tokens, no cost.
    assert not any(name == "supportdesk_llm_tokens_total" for name, _ in set(after) - set(before))


def test_a_ticket_routed_by_the_llm_counts_tokens_cost_and_latency(
    client, pools, llm, django_capture_on_commit_callbacks
):
    llm.enqueue(route_reply("technical", 0.93))
    before = scrape(client)
    ticket = open_and_route(
        "The app crashes when I open settings", django_capture_on_commit_callbacks
    )
    after = scrape(client)
    assert ticket.pool == pools["technical"]
    model = "claude-haiku-4-5"
    assert delta(before, after, "supportdesk_llm_tokens_total", model=model, kind="input") == 350
    assert delta(before, after, "supportdesk_llm_tokens_total", model=model, kind="output") == 40
    expected_cost = float(Decimal(350) / 10**6 * 1 + Decimal(40) / 10**6 * 5)
    assert delta(before, after, "supportdesk_llm_cost_usd_total", model=model) == pytest.approx(
        expected_cost
    )
    assert delta(before, after, "supportdesk_routing_latency_seconds_count", tier="llm") == 1
    assert delta(before, after, "supportdesk_routing_latency_seconds_sum", tier="llm") > 0
    assert (
        delta(
            before,
            after,
            "supportdesk_routing_outcomes_total",
            outcome="route",
            tier="llm",
            dry_run="false",
        )
        == 1
    )


@pytest.mark.parametrize(
    ("status", "error_type", "kind"),
    [(529, "overloaded_error", "overloaded"), (500, "api_error", "server_error")],
)
def test_a_failing_provider_counts_provider_errors_per_tier(
    client, pools, llm, django_capture_on_commit_callbacks, status, error_type, kind
):
    llm.default = lambda body: api.error(status, error_type)
    before = scrape(client)
    ticket = open_and_route(
        "Something is wrong with my account", django_capture_on_commit_callbacks
    )
    after = scrape(client)
    assert ticket.status == Ticket.Status.IN_REVIEW
    for tier, model in (("llm", "claude-haiku-4-5"), ("escalation", "claude-sonnet-4-6")):
        assert (
            delta(
                before,
                after,
                "supportdesk_provider_errors_total",
                tier=tier,
                model=model,
                kind=kind,
            )
            == 1
        )
        assert (
            delta(
                before,
                after,
                "supportdesk_routing_decisions_total",
                tier=tier,
                action="pass",
                valid="false",
            )
            == 1
        )
    assert (
        delta(
            before,
            after,
            "supportdesk_routing_outcomes_total",
            outcome="review",
            tier="review",
            dry_run="false",
        )
        == 1
    )


def test_an_invalid_answer_is_not_a_provider_error(
    client, pools, llm, django_capture_on_commit_callbacks
):
    llm.default = lambda body: route_reply(None, 0.95, action="route")  # no pool: inconsistent
    before = scrape(client)
    open_and_route("My invoice total looks wrong", django_capture_on_commit_callbacks)
    after = scrape(client)
    errors = {key for key in after if key[0] == "supportdesk_provider_errors_total"}
    assert all(after[key] == before.get(key, 0.0) for key in errors)
    assert (
        delta(
            before,
            after,
            "supportdesk_routing_decisions_total",
            tier="llm",
            action="route",
            valid="false",
        )
        == 1
    )


def test_queue_gauges_reflect_the_database_at_scrape_time(
    client, pools, django_capture_on_commit_callbacks
):
    RoutingRule.objects.create(name="invoices", pattern="invoice", pool=pools["billing"])
    for n in range(2):
        open_and_route(f"Invoice {n} is missing", django_capture_on_commit_callbacks)
    # No rule, no local model, no API key: review (llm_disabled).
    open_and_route("Something odd happened", django_capture_on_commit_callbacks)
    samples = scrape(client)
    assert value(samples, "supportdesk_pool_waiting_tickets", pool="billing") == 2
    assert value(samples, "supportdesk_pool_waiting_tickets", pool="technical") == 0
    assert ("supportdesk_pool_waiting_tickets", frozenset({("pool", "refund")})) in samples
    assert value(samples, "supportdesk_tickets_open", status="queued", pool="billing") == 2
    assert value(samples, "supportdesk_tickets_open", status="in_review", pool="") == 1
    assert (
        value(samples, "supportdesk_review_items_open", kind="review", reason="llm_disabled") == 1
    )

    Ticket.objects.filter(pool=pools["billing"]).update(status=Ticket.Status.RESOLVED)
    samples = scrape(client)
    assert value(samples, "supportdesk_pool_waiting_tickets", pool="billing") == 0
    assert value(samples, "supportdesk_tickets_open", status="queued", pool="billing") == 0


def test_metrics_are_refused_to_a_client_outside_the_allowed_networks_without_the_token(
    client, settings
):
    settings.METRICS_TOKEN = "scrape-secret"
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/metrics", **outside).status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", **outside).status_code == 403
    allowed = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret", **outside)
    assert allowed.status_code == 200
    assert b"supportdesk_pool_waiting_tickets" in allowed.content
    # Loopback is allowed by default, and only while it is in the allowed networks.
    assert client.get("/metrics").status_code == 200
    settings.METRICS_ALLOWED_NETWORKS = []
    assert client.get("/metrics").status_code == 403
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_a_scraper_asking_for_openmetrics_gets_openmetrics(client):
    response = client.get("/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.rstrip().endswith(b"# EOF")


RECORD = """
import django, sys
django.setup()
from apps.orchestrator.metrics import routing_decisions_record
from apps.orchestrator.models import RoutingDecision
routing_decisions_record([
    RoutingDecision(tier=tier, action="route", latency_ms=5, ends_run=True, model="m",
                    input_tokens=100, output_tokens=10)
    for tier in sys.argv[1:]
])
"""

SCRAPE = """
import django
django.setup()
from apps.core.metrics import metrics_exposition
print(metrics_exposition(accept="")[0].decode())
"""


@pytest.mark.timeout(120)  # three Django processes start on a shared machine
def test_counters_of_several_processes_are_merged_in_multiprocess_mode(tmp_path, pools):
    """Two processes (say a Celery worker and an ASGI server) count; a third one's scrape
    shows both, as /metrics of any process does with PROMETHEUS_MULTIPROC_DIR."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "supportdesk.settings.test",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        # The scrape's gauges read the test database (its tables exist; this test's rows are
        # not committed, so no ticket is counted).
        "SQLITE_PATH": str(connection.settings_dict["NAME"]),
    }

    def run(code: str, *args: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout

    run(RECORD, "llm")
    run(RECORD, "llm", "rules")
    assert len(list(tmp_path.glob("counter_*.db"))) == 2  # one file per process
    samples = parse(run(SCRAPE))
    labels = {"tier": "llm", "action": "route", "valid": "true"}
    assert value(samples, "supportdesk_routing_decisions_total", **labels) == 2
    assert value(samples, "supportdesk_llm_tokens_total", model="m", kind="input") == 200
    assert value(samples, "supportdesk_routing_latency_seconds_count", tier="rules") == 1

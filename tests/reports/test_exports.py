"""CSV exports stream their rows and round-trip: csv.DictReader of the body gives back the rows."""

import csv
import io
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import AsyncClient
from django.test.utils import CaptureQueriesContext

from apps.orchestrator.models import RoutingDecision
from apps.pools.models import Intent
from apps.reports import exports
from apps.tickets.models import Ticket
from tests.reports.conftest import END, START

PERIOD = {"from": START.isoformat(), "to": END.isoformat()}


def read_csv(response) -> list[dict[str, str]]:
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def in_period(when) -> bool:
    return START <= when.date() <= END


def test_decision_export_round_trips_every_decision_of_the_period(manager_api, history):
    rows = read_csv(manager_api.get("/api/v1/decisions/export/", PERIOD))
    expected = sorted(
        (d for d in history.decisions if in_period(d.created_at)),
        key=lambda d: (d.created_at, d.pk),
        reverse=True,
    )
    assert [int(row["id"]) for row in rows] == [d.pk for d in expected]
    assert list(rows[0]) == exports.DECISION_COLUMNS
    for row, decision in zip(rows, expected, strict=True):
        assert int(row["ticket"]) == decision.ticket_id
        assert row["tier"] == decision.tier
        assert row["action"] == decision.action
        assert row["model"] == decision.model
        assert row["pool"] == (decision.pool.slug if decision.pool else "")
        assert Decimal(row["cost_usd"]) == decision.cost_usd
        assert int(row["input_tokens"]) == decision.input_tokens
        assert int(row["output_tokens"]) == decision.output_tokens
        assert float(row["latency_ms"]) == decision.latency_ms
        assert row["confidence"] == (
            "" if decision.confidence is None else str(decision.confidence)
        )
        assert row["final"] == ("true" if decision.ends_run else "false")
        assert row["request_id"] == str(decision.request_id)
        assert row["input_minimised"] == decision.redacted
    # Each receipt carries the tier trail of its routing run.
    escalated = next(r for r in rows if r["tier"] == "escalation" and r["final"] == "true")
    assert escalated["trail"].endswith("escalation:route")
    assert "llm:pass" in escalated["trail"]


def test_decisions_name_the_intent_in_a_last_column_of_the_export_and_in_the_api(
    manager_api, history, pools
):
    decision = next(
        d for d in history.decisions if in_period(d.created_at) and d.tier == "local" and d.pool
    )
    intent = Intent.objects.create(slug="password_reset", pool=decision.pool)
    RoutingDecision.objects.filter(pk=decision.pk).update(intent=intent)
    rows = read_csv(manager_api.get("/api/v1/decisions/export/", PERIOD))
    assert exports.DECISION_COLUMNS[-1] == "intent"
    assert list(rows[0])[-1] == "intent"
    assert {row["id"]: row["intent"] for row in rows if row["intent"]} == {
        str(decision.pk): "password_reset"
    }
    listed = manager_api.get("/api/v1/decisions/", {**PERIOD, "ticket": decision.ticket_id}).json()[
        "results"
    ]
    assert {d["id"]: d["intent"] for d in listed if d["intent"]} == {decision.pk: "password_reset"}
    assert list(listed[0])[-1] == "intent"


def test_decision_export_uses_the_drilldown_filters(manager_api, history):
    rows = read_csv(
        manager_api.get(
            "/api/v1/decisions/export/",
            {**PERIOD, "tier": "llm", "model": "claude-haiku-4-5"},
        )
    )
    assert {int(r["id"]) for r in rows} == {
        d.pk for d in history.decisions if in_period(d.created_at) and d.tier == "llm"
    }
    assert rows


def test_decision_export_reads_rows_in_chunks_not_one_query_per_row(manager_api, history):
    with CaptureQueriesContext(connection) as queries:
        rows = read_csv(manager_api.get("/api/v1/decisions/export/", PERIOD))
    # The rows and their trails come in a few queries per chunk, however many rows there are.
    assert len(rows) > 40
    assert len(queries) < 10


def test_customer_text_that_looks_like_a_formula_is_defused(manager_api, history):
    decision = next(d for d in history.decisions if in_period(d.created_at))
    RoutingDecision.objects.filter(pk=decision.pk).update(redacted='=HYPERLINK("x","y")')
    rows = read_csv(
        manager_api.get("/api/v1/decisions/export/", {**PERIOD, "ticket": decision.ticket_id})
    )
    row = next(r for r in rows if int(r["id"]) == decision.pk)
    assert row["input_minimised"] == '\'=HYPERLINK("x","y")'


def test_ticket_export_round_trips_the_tickets_created_in_the_period(manager_api, history):
    rows = read_csv(manager_api.get("/api/v1/reports/tickets/export/", PERIOD))
    specs = sorted(
        (s for s in history.specs if in_period(s.created)), key=lambda s: (s.created, s.ticket.pk)
    )
    assert [int(r["id"]) for r in rows] == [s.ticket.pk for s in specs]
    assert list(rows[0]) == exports.TICKET_COLUMNS
    for row, spec in zip(rows, specs, strict=True):
        ticket = Ticket.objects.get(pk=spec.ticket.pk)
        final = [d for d in spec.decisions if d.ends_run][-1]
        assert row["status"] == ticket.status
        assert row["pool"] == (spec.pool or "")
        assert row["final_tier"] == final.tier
        assert int(row["decisions"]) == len(spec.decisions)
        assert Decimal(row["routing_cost_usd"]) == sum(
            (d.cost_usd for d in spec.decisions), Decimal(0)
        )
        assert row["sla_breached_at"] == (
            spec.sla_breached_at.isoformat() if spec.sla_breached_at else ""
        )
        assert row["created_at"] == spec.created.isoformat()


def test_ticket_export_honours_the_pool_filter(manager_api, history):
    rows = read_csv(
        manager_api.get("/api/v1/reports/tickets/export/", {**PERIOD, "pool": "refund"})
    )
    assert {int(r["id"]) for r in rows} == {
        s.ticket.pk for s in history.specs if in_period(s.created) and s.pool == "refund"
    }
    assert {r["pool"] for r in rows} == {"refund"}


def test_csv_is_served_to_a_client_that_asks_for_text_csv(manager_api, history):
    response = manager_api.get("/api/v1/decisions/export/", PERIOD, HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert read_csv(response)


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_export_streams_from_an_async_iterator(history, manager):
    client = AsyncClient()
    await client.aforce_login(manager)
    response: Any = await client.get("/api/v1/decisions/export/", PERIOD)
    assert response.status_code == 200
    # An async body is sent chunk by chunk; a sync one Django would buffer whole under ASGI.
    assert response.is_async
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert {int(r["id"]) for r in rows} == {
        d.pk for d in history.decisions if in_period(d.created_at)
    }
    tickets: Any = await client.get("/api/v1/reports/tickets/export/", PERIOD)
    assert tickets.is_async
    body = b"".join([chunk async for chunk in tickets.streaming_content]).decode()
    assert {int(r["id"]) for r in csv.DictReader(io.StringIO(body))} == {
        s.ticket.pk for s in history.specs if in_period(s.created)
    }

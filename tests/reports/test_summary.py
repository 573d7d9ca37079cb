"""Every figure of `GET /api/v1/reports/summary/` equals the same figure computed here, in plain
Python, from the rows the test built; each figure's drill-down returns exactly its rows."""

import math
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.orchestrator.models import RoutingDecision
from apps.reports.selectors import ReportFilter
from apps.reports.summary import report_summary, report_summary_data
from apps.review.models import ReviewItem
from tests.reports.conftest import DAYS, END, START, History, TicketSpec

T = RoutingDecision.Tier
SUMMARY = "/api/v1/reports/summary/"
DECISIONS = "/api/v1/decisions/"
PERIOD = {"from": START.isoformat(), "to": END.isoformat()}


def in_period(when) -> bool:
    return START <= when.date() <= END


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def drill_ids(client, drill: dict[str, str], pool: str | None = None) -> set[int]:
    params = {**PERIOD, **({"pool": pool} if pool else {}), **drill, "limit": 1000}
    response = client.get(DECISIONS, params)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == len(body["results"])
    return {row["id"] for row in body["results"]}


class Expected:
    """The report's figures from the specs alone (no ORM aggregation)."""

    def __init__(self, history: History, pool: str | None = None) -> None:
        self.history = history
        self.specs = [s for s in history.specs if pool is None or s.pool == pool]
        self.decisions = [d for s in self.specs for d in s.decisions if in_period(d.created_at)]
        # A ticket's routing counts by its latest final decision, when that is in the period.
        self.routed: list[tuple[TicketSpec, RoutingDecision]] = []
        for spec in self.specs:
            final = [d for d in spec.decisions if d.ends_run][-1]
            if in_period(final.created_at):
                self.routed.append((spec, final))

    def finals_where(self, predicate) -> set[int]:
        return {final.pk for spec, final in self.routed if predicate(spec, final)}


@pytest.fixture
def expected(history) -> Expected:
    return Expected(history)


def test_summary_counts_tickets_per_day_by_pool_and_leaves_other_days_out(
    manager_api, history, expected
):
    body = manager_api.get(SUMMARY, PERIOD).json()
    want = Counter(
        (spec.created.date().isoformat(), spec.pool)
        for spec in expected.specs
        if in_period(spec.created)
    )
    got = {(row["day"], row["pool"]): row["count"] for row in body["tickets"]["per_day"]}
    assert got == dict(want)
    assert body["tickets"]["total"] == sum(want.values())
    # The period excludes the day before and after.
    assert sum(want.values()) < len(history.specs)


def test_routing_shares_count_each_ticket_once_by_its_latest_final_decision(
    manager_api, history, expected
):
    routing = manager_api.get(SUMMARY, PERIOD).json()["routing"]
    n = len(expected.routed)
    assert routing["tickets"] == n
    tiers = Counter(final.tier for _, final in expected.routed)
    assert {row["tier"]: row["count"] for row in routing["by_final_tier"]} == dict(tiers)
    routed_by = Counter(final.tier for _, final in expected.routed if final.action == "route")
    for key, tier in (("rule_hit", T.RULES), ("cache_hit", T.CACHE), ("local", T.LOCAL)):
        assert routing[key]["count"] == routed_by[tier], key
        assert routing[key]["share"] == pytest.approx(routed_by[tier] / n), key
    # Review counts every ticket sent there, also by the local model's "no pool fits".
    to_review = sum(1 for _, final in expected.routed if final.action == "review")
    assert to_review > tiers[T.REVIEW] > 0
    assert routing["escalated_to_review"]["count"] == to_review
    assert routing["escalated_to_review"]["share"] == pytest.approx(to_review / n)

    def tiers_of(spec):
        return {d.tier for d in spec.decisions}

    llm = sum(1 for spec, _ in expected.routed if tiers_of(spec) & {T.LLM, T.ESCALATION})
    assert routing["llm_call"] == {
        "count": llm,
        "total": n,
        "share": pytest.approx(llm / n),
        "drill": {"final": "1", "llm_call": "1"},
    }
    escalated = sum(1 for spec, _ in expected.routed if T.ESCALATION in tiers_of(spec))
    assert routing["escalated_to_model"]["count"] == escalated
    assert routing["escalated_to_model"]["share"] == pytest.approx(escalated / n)
    to_pool = [(s, f) for s, f in expected.routed if f.action == RoutingDecision.Action.ROUTE]
    rerouted = sum(1 for s, _ in to_pool if s.rerouted)
    assert rerouted > 0
    assert routing["reroute"]["count"] == rerouted
    assert routing["reroute"]["total"] == len(to_pool)
    # The ticket opened the day before the period and routed in it counts here.
    late = history.specs[-1]
    assert any(spec is late for spec, _ in expected.routed)
    assert not in_period(late.created)


def test_cost_and_tokens_per_day_tier_and_model_equal_the_sums_of_the_rows(manager_api, expected):
    cost = manager_api.get(SUMMARY, PERIOD).json()["cost"]
    decisions = expected.decisions
    total = sum((d.cost_usd for d in decisions), Decimal(0))
    tickets = {d.ticket_id for d in decisions}
    assert cost["decisions"] == len(decisions)
    assert cost["total_usd"] == pytest.approx(float(total))
    assert cost["tickets"] == len(tickets)
    assert cost["per_ticket_usd"] == pytest.approx(float(total) / len(tickets))
    for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens"):
        assert cost["tokens"][name] == sum(getattr(d, name) for d in decisions)
    per_day: dict[str, Decimal] = defaultdict(Decimal)
    for d in decisions:
        per_day[d.created_at.date().isoformat()] += d.cost_usd
    assert {row["day"]: row["cost_usd"] for row in cost["per_day"]} == pytest.approx(
        {day: float(v) for day, v in per_day.items()}
    )
    groups: dict[tuple[str, str], list[RoutingDecision]] = defaultdict(list)
    for d in decisions:
        groups[(d.tier, d.model)].append(d)
    got = {(row["tier"], row["model"]): row for row in cost["by_tier_model"]}
    assert set(got) == set(groups)
    for key, rows in groups.items():
        row = got[key]
        group_cost = float(sum((d.cost_usd for d in rows), Decimal(0)))
        group_tickets = len({d.ticket_id for d in rows})
        assert row["decisions"] == len(rows)
        assert row["tickets"] == group_tickets
        assert row["cost_usd"] == pytest.approx(group_cost)
        assert row["cost_per_ticket_usd"] == pytest.approx(group_cost / group_tickets)
        assert row["input_tokens"] == sum(d.input_tokens for d in rows)
        assert row["output_tokens"] == sum(d.output_tokens for d in rows)
    assert ("llm", "claude-haiku-4-5") in got
    assert ("escalation", "claude-sonnet-4-6") in got


def test_confidence_histogram_bins_the_model_tiers_confidences(manager_api, expected):
    confidence = manager_api.get(SUMMARY, PERIOD).json()["confidence"]
    want: dict[str, list[int]] = {}
    for d in expected.decisions:
        if d.tier in (T.LOCAL, T.LLM, T.ESCALATION) and d.confidence is not None:
            index = min(int(d.confidence * 10), 9)
            want.setdefault(d.tier, [0] * 10)[index] += 1
    got = {row["tier"]: [b["count"] for b in row["bins"]] for row in confidence["tiers"]}
    assert got == want


def test_latency_percentiles_by_tier_are_nearest_rank_over_the_period(manager_api, expected):
    latency = manager_api.get(SUMMARY, PERIOD).json()["latency"]
    values: dict[str, list[float]] = defaultdict(list)
    for d in expected.decisions:
        if d.tier not in (T.REVIEW, T.CLARIFY, T.HANDOFF):
            values[d.tier].append(d.latency_ms)
    got = {row["tier"]: row for row in latency}
    assert set(got) == set(values)
    for tier, tier_values in values.items():
        assert got[tier]["n"] == len(tier_values)
        for p in (50, 95, 99):
            assert got[tier][f"p{p}_ms"] == pytest.approx(nearest_rank(tier_values, p)), (tier, p)


def test_accuracy_comes_from_resolved_audits_with_a_wilson_interval(manager_api, history):
    accuracy = manager_api.get(SUMMARY, PERIOD).json()["accuracy"]
    audits = [a for a in history.audits if in_period(a.decision.created_at)]
    correct = sum(1 for a in audits if a.verdict_pool_id == a.decision.pool_id)
    assert accuracy["pooled"]["n"] == len(audits) > 0
    assert accuracy["pooled"]["correct"] == correct
    assert accuracy["pooled"]["accuracy"] == pytest.approx(correct / len(audits))
    n, p, z = len(audits), correct / len(audits), 1.959963984540054
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert accuracy["pooled"]["low"] == pytest.approx(centre - half)
    assert accuracy["pooled"]["high"] == pytest.approx(centre + half)


def test_with_a_pool_accuracy_covers_the_routes_to_that_pool_and_drills_down_to_them(
    manager_api, history
):
    in_scope = [a for a in history.audits if in_period(a.decision.created_at)]
    pools = {a.decision.pool for a in in_scope}
    assert pools, "the history has audited routes"
    for pool in pools:
        accuracy = manager_api.get(SUMMARY, {**PERIOD, "pool": pool.slug}).json()["accuracy"]
        audits = [a for a in in_scope if a.decision.pool_id == pool.pk]
        correct = sum(1 for a in audits if a.verdict_pool_id == a.decision.pool_id)
        assert accuracy["scope"] == f"routes to {pool.name}"
        assert (accuracy["pooled"]["n"], accuracy["pooled"]["correct"]) == (len(audits), correct)
        assert drill_ids(manager_api, accuracy["drill"]) == {a.decision_id for a in audits}


def test_confusion_matrix_counts_each_decision_by_its_newest_label(manager_api, history):
    confusion = manager_api.get(SUMMARY, PERIOD).json()["confusion"]
    newest = {}
    for label in history.labels:  # created in order: a later label wins
        if in_period(label.decision.created_at):
            newest[label.decision_id] = label
    want = Counter(
        (
            label.pool.slug if label.pool else "none",
            label.decision.pool.slug if label.decision.pool else "none",
        )
        for label in newest.values()
    )
    got = {(c["truth"], c["predicted"]): c["count"] for c in confusion["cells"]}
    assert got == dict(want)
    assert ("none", "none") in got  # the "no pool fits" review verdict
    assert confusion["labelled"] == len(newest)


def test_review_queue_and_sla_breaches(manager_api, history, expected):
    body = manager_api.get(SUMMARY, PERIOD).json()
    assert body["review_queue"]["open"] == len(history.open_items)
    assert body["review_queue"]["kinds"]["review"]["open"] == len(history.open_items)
    breached = [s for s in expected.specs if s.sla_breached_at and in_period(s.sla_breached_at)]
    assert body["sla"]["breaches"] == len(breached) > 0
    assert body["sla"]["by_pool"] == [
        {"pool": pool, "count": n} for pool, n in sorted(Counter(s.pool for s in breached).items())
    ]


def test_dry_runs_never_count(manager_api, history, expected):
    body = manager_api.get(SUMMARY, PERIOD).json()
    assert history.dry_runs
    assert body["cost"]["decisions"] == len(expected.decisions)
    assert drill_ids(manager_api, {}).isdisjoint(d.pk for d in history.dry_runs)


def test_pool_filter_keeps_only_tickets_now_in_that_pool(manager_api, history):
    expected = Expected(history, pool="billing")
    body = manager_api.get(SUMMARY, {**PERIOD, "pool": "billing"}).json()
    assert body["pool"] == "billing"
    assert body["routing"]["tickets"] == len(expected.routed)
    assert body["cost"]["decisions"] == len(expected.decisions)
    assert body["cost"]["total_usd"] == pytest.approx(
        float(sum((d.cost_usd for d in expected.decisions), Decimal(0)))
    )
    assert {row["pool"] for row in body["tickets"]["per_day"]} == {"billing"}
    assert drill_ids(manager_api, {}, pool="billing") == {d.pk for d in expected.decisions}


def test_the_page_and_the_api_show_the_same_summary(manager_api, history):
    api = manager_api.get(SUMMARY, PERIOD).json()
    direct = report_summary_data(report_summary(filters=ReportFilter(start=START, end=END)))
    api.pop("generated_at"), direct.pop("generated_at")
    # Ages move with the clock; everything else is the same selector's output.
    for body in (api, direct):
        body["review_queue"].pop("oldest_open_age_seconds")
        for kind in body["review_queue"]["kinds"].values():
            kind.pop("oldest_open_age_seconds")
    assert api == direct


# -- drill-downs: exactly the rows behind each figure ----------------------------------------


def test_share_drilldowns_return_the_final_decisions_of_the_counted_tickets(manager_api, expected):
    routing = manager_api.get(SUMMARY, PERIOD).json()["routing"]
    checks = {
        "rule_hit": lambda s, f: f.tier == T.RULES and f.action == "route",
        "cache_hit": lambda s, f: f.tier == T.CACHE and f.action == "route",
        "local": lambda s, f: f.tier == T.LOCAL and f.action == "route",
        "escalated_to_review": lambda s, f: f.action == "review",
        "llm_call": lambda s, f: bool({d.tier for d in s.decisions} & {T.LLM, T.ESCALATION}),
        "escalated_to_model": lambda s, f: T.ESCALATION in {d.tier for d in s.decisions},
        "reroute": lambda s, f: f.action == "route" and s.rerouted,
    }
    for key, predicate in checks.items():
        ids = drill_ids(manager_api, routing[key]["drill"])
        assert ids == expected.finals_where(predicate), key
        assert len(ids) == routing[key]["count"], key
    assert drill_ids(manager_api, routing["drill"]) == expected.finals_where(lambda s, f: True)


def test_cost_drilldowns_return_the_rows_whose_costs_make_the_figure(manager_api, expected):
    cost = manager_api.get(SUMMARY, PERIOD).json()["cost"]
    by_id = {d.pk: d for d in expected.decisions}
    for row in cost["by_tier_model"]:
        ids = drill_ids(manager_api, row["drill"])
        assert ids == {
            d.pk for d in expected.decisions if (d.tier, d.model) == (row["tier"], row["model"])
        }
        assert float(sum((by_id[i].cost_usd for i in ids), Decimal(0))) == pytest.approx(
            row["cost_usd"]
        )
    for row in cost["per_day"]:
        ids = drill_ids(manager_api, row["drill"])
        assert ids == {
            d.pk for d in expected.decisions if d.created_at.date().isoformat() == row["day"]
        }
    assert drill_ids(manager_api, cost["drill"]) == set(by_id)


def test_histogram_and_latency_drilldowns(manager_api, expected):
    body = manager_api.get(SUMMARY, PERIOD).json()
    for tier in body["confidence"]["tiers"]:
        for b in tier["bins"]:
            ids = drill_ids(manager_api, b["drill"])
            assert len(ids) == b["count"]
            assert ids == {
                d.pk
                for d in expected.decisions
                if d.tier == tier["tier"]
                and d.confidence is not None
                and b["low"] <= d.confidence
                and (d.confidence < b["high"] or b["high"] == 1.0)
            }
    for row in body["latency"]:
        ids = drill_ids(manager_api, row["drill"])
        assert len(ids) == row["n"]


def test_ticket_review_accuracy_confusion_and_sla_drilldowns(manager_api, history, expected):
    body = manager_api.get(SUMMARY, PERIOD).json()
    for row in body["tickets"]["per_day"]:
        ids = drill_ids(manager_api, row["drill"])
        assert ids == {
            [d for d in s.decisions if d.ends_run][-1].pk
            for s in expected.specs
            if s.created.date().isoformat() == row["day"] and s.pool == row["pool"]
        }
        assert len(ids) == row["count"]
    assert drill_ids(manager_api, body["review_queue"]["drill"]) == {
        item.decision_id for item in history.open_items
    }
    audited = {a.decision_id for a in history.audits if in_period(a.decision.created_at)}
    assert drill_ids(manager_api, body["accuracy"]["drill"]) == audited
    for cell in body["confusion"]["cells"]:
        ids = drill_ids(manager_api, cell["drill"])
        assert len(ids) == cell["count"], cell
    breached = {
        [d for d in s.decisions if d.ends_run][-1].pk
        for s in expected.specs
        if s.sla_breached_at and in_period(s.sla_breached_at)
    }
    assert drill_ids(manager_api, body["sla"]["drill"]) == breached


def test_decision_list_filters_by_tier_ticket_and_time_and_paginates(manager_api, expected):
    llm = {d.pk for d in expected.decisions if d.tier == T.LLM}
    assert drill_ids(manager_api, {"tier": "llm"}) == llm
    spec = expected.specs[3]
    assert drill_ids(manager_api, {"ticket": str(spec.ticket.pk)}) == {
        d.pk for d in spec.decisions if in_period(d.created_at)
    }
    one_day = {"from": DAYS[2].isoformat(), "to": DAYS[2].isoformat(), "limit": 1000}
    body = manager_api.get(DECISIONS, one_day).json()
    assert {row["id"] for row in body["results"]} == {
        d.pk for d in expected.decisions if d.created_at.date() == DAYS[2]
    }
    page = manager_api.get(DECISIONS, {**PERIOD, "limit": 5, "offset": 5}).json()
    assert page["count"] == len(expected.decisions)
    assert len(page["results"]) == 5
    newest_first = sorted(expected.decisions, key=lambda d: (d.created_at, d.pk), reverse=True)
    assert [row["id"] for row in page["results"]] == [d.pk for d in newest_first[5:10]]
    assert set(page["results"][0]) >= {
        "tier",
        "model",
        "prompt_version",
        "input_tokens",
        "cost_usd",
        "latency_ms",
        "confidence",
        "input_minimised",
        "ticket_pool",
    }


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-03-06", "to": "2026-03-01"},
        {"from": "2024-01-01", "to": "2026-03-01"},
        {"from": "yesterday"},
        {"pool": "no-such-pool"},
        {"tier": "psychic"},
    ],
)
def test_bad_filters_are_refused_in_the_error_shape(manager_api, db, params):
    response = manager_api.get(DECISIONS, params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_review_items_of_other_kinds_do_not_count_as_open_review(manager_api, history):
    item = history.open_items[0]
    ReviewItem.objects.filter(pk=item.pk).update(
        status=ReviewItem.Status.RESOLVED, verdict="routed"
    )
    body = manager_api.get(SUMMARY, PERIOD).json()
    assert body["review_queue"]["open"] == len(history.open_items) - 1


@pytest.mark.parametrize("pool", ["a\x00b", "not a slug"])
@pytest.mark.parametrize("path", [SUMMARY, DECISIONS, "/api/v1/decisions/export/"])
def test_a_pool_that_cannot_be_a_slug_is_refused_before_any_query(manager_api, db, path, pool):
    # PostgreSQL refuses a NUL in a query outright (it was a 500): such a value never gets there.
    with CaptureQueriesContext(connection) as queries:
        response = manager_api.get(path, {"pool": pool})
    assert response.status_code == 400
    assert "pool" in response.json()["error"]["fields"]
    assert not [q for q in queries.captured_queries if "pools_pool" in q["sql"]]

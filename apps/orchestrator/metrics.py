"""Prometheus counters of routing and of the model calls behind it (and behind AI drafts),
counted once the rows that record them commit. Exposed by `/metrics` (apps/core/metrics.py);
see docs/operations.md."""

from collections.abc import Sequence
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING

from django.db import transaction
from prometheus_client import Counter, Histogram

from apps.orchestrator.providers.base import PROVIDER_ERROR_KINDS

if TYPE_CHECKING:
    from apps.orchestrator.models import RoutingDecision

LLM_TIERS = frozenset({"llm", "escalation"})
# Tiers that decide in microseconds (rules, cache) up to an LLM call that hit its timeout.
LATENCY_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

routing_decisions = Counter(
    "supportdesk_routing_decisions",
    "Routing attempts recorded (one per RoutingDecision row), by tier, action and validity.",
    ["tier", "action", "valid"],
)
routing_outcomes = Counter(
    "supportdesk_routing_outcomes",
    "Routing runs by where the text went (route, clarify, review) and the tier that decided.",
    ["outcome", "tier", "dry_run"],
)
routing_latency = Histogram(
    "supportdesk_routing_latency_seconds",
    "Latency of one routing attempt (one decision row), by tier.",
    ["tier"],
    buckets=LATENCY_BUCKETS,
)
llm_tokens = Counter(
    "supportdesk_llm_tokens",
    "Tokens used by routing LLM calls, by model and kind (input, output, cache_read, "
    "cache_creation).",
    ["model", "kind"],
)
llm_cost = Counter(
    "supportdesk_llm_cost_usd",
    "Cost in US dollars of routing LLM calls (tokens times the price table), by model.",
    ["model"],
)
provider_retries = Counter(
    "supportdesk_provider_retries",
    "HTTP requests to the LLM provider that failed and were retried by the SDK (a call's "
    "attempts beyond its last), by tier and model.",
    ["tier", "model"],
)
provider_errors = Counter(
    "supportdesk_provider_errors",
    "LLM provider failures after the SDK's retries (timeout, 429, 5xx, 529, ...), by tier, "
    "model and kind.",
    ["tier", "model", "kind"],
)

drafts = Counter(
    "supportdesk_drafts",
    "AI draft replies asked of the model for agents, by model and status (ready, failed).",
    ["model", "status"],
)
draft_cost = Counter(
    "supportdesk_draft_cost_usd",
    "Cost in US dollars of AI draft replies (tokens times the price table), by model.",
    ["model"],
)


def routing_decisions_record(decisions: Sequence["RoutingDecision"]) -> None:
    """Count one routing run's decision rows once the transaction that saved them commits."""
    transaction.on_commit(partial(_decisions_observe, list(decisions)), robust=True)


def _decisions_observe(decisions: list["RoutingDecision"]) -> None:
    for row in decisions:
        routing_decisions.labels(row.tier, row.action, str(row.valid).lower()).inc()
        routing_latency.labels(row.tier).observe(row.latency_ms / 1000)
        if row.tier not in LLM_TIERS:
            continue
        model = row.model or "unknown"
        for kind, tokens in (
            ("input", row.input_tokens),
            ("output", row.output_tokens),
            ("cache_read", row.cache_read_tokens),
            ("cache_creation", row.cache_creation_tokens),
        ):
            if tokens:
                llm_tokens.labels(model, kind).inc(tokens)
        if row.cost_usd:
            llm_cost.labels(model).inc(float(row.cost_usd))
        if row.attempts > 1:
            provider_retries.labels(row.tier, model).inc(row.attempts - 1)
        kind = row.error.split(":", 1)[0]
        if not row.valid and kind in PROVIDER_ERROR_KINDS:
            provider_errors.labels(row.tier, model, kind).inc()
    if decisions:
        # A trailing clarify step is not a tier's decision: the tier before it chose the pool.
        deciding = [row for row in decisions if row.tier != "clarify"] or decisions
        final = decisions[-1]
        outcome = "clarify" if final.tier == "clarify" else final.action
        routing_outcomes.labels(outcome, deciding[-1].tier, str(final.dry_run).lower()).inc()


def draft_record(*, model: str, status: str, error: str, cost_usd: Decimal | None) -> None:
    """Count an AI draft (and, when the provider failed, its error under tier `draft`) once
    the transaction that saved it commits."""
    model = model or "unknown"
    kind = error.split(":", 1)[0]
    provider_failed = status == "failed" and kind in PROVIDER_ERROR_KINDS
    cost = float(cost_usd or 0)

    def observe() -> None:
        drafts.labels(model, status).inc()
        if cost:
            draft_cost.labels(model).inc(cost)
        if provider_failed:
            provider_errors.labels("draft", model, kind).inc()

    transaction.on_commit(observe, robust=True)

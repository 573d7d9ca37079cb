"""The shapes of the report summary's sections (`GET /api/v1/reports/summary/`, docs/reports.md).

Every figure carries `drill`: the query parameters of `GET decisions/` that list the rows
behind it. `Share` objects are flattened to {count, total, share, drill} by
`report_summary_data`.
"""

from dataclasses import dataclass
from typing import TypedDict

from apps.reports.selectors import DecisionDrill

Drill = dict[str, str]


@dataclass(frozen=True, kw_only=True)
class Share:
    """`count` of `total`; `share` is None when there is nothing to divide by."""

    count: int
    total: int
    share: float | None
    drill: Drill

    @classmethod
    def of(cls, count: int, total: int, drill: DecisionDrill) -> "Share":
        return cls(
            count=count,
            total=total,
            share=count / total if total else None,
            drill=drill.as_params(),
        )


class TicketDay(TypedDict):
    day: str
    pool: str | None
    count: int
    drill: Drill


class TicketsSection(TypedDict):
    total: int
    per_day: list[TicketDay]


class TierShare(TypedDict):
    tier: str
    count: int
    total: int
    share: float | None
    drill: Drill


class RoutingSection(TypedDict):
    tickets: int
    drill: Drill
    by_final_tier: list[TierShare]
    rule_hit: Share
    cache_hit: Share
    local: Share
    llm_call: Share
    escalated_to_model: Share
    escalated_to_review: Share
    reroute: Share


class CostDay(TypedDict):
    day: str
    decisions: int
    cost_usd: float
    drill: Drill


class CostByTierModel(TypedDict):
    tier: str
    model: str
    decisions: int
    tickets: int
    cost_usd: float
    cost_per_ticket_usd: float | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_creation_tokens: int
    drill: Drill


class CostSection(TypedDict):
    decisions: int
    tickets: int
    total_usd: float
    per_ticket_usd: float | None
    drill: Drill
    tokens: dict[str, int]
    per_day: list[CostDay]
    by_tier_model: list[CostByTierModel]


class ConfidenceBin(TypedDict):
    low: float
    high: float
    count: int
    drill: Drill


class ConfidenceTier(TypedDict):
    tier: str
    bins: list[ConfidenceBin]


class ConfidenceSection(TypedDict):
    edges: list[float]
    tiers: list[ConfidenceTier]


class LatencyRow(TypedDict):
    tier: str
    n: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    drill: Drill


class ReviewKind(TypedDict):
    open: int
    by_reason: dict[str, int]
    oldest_open_age_seconds: float | None


class ReviewQueueSection(TypedDict):
    open: int
    oldest_open_age_seconds: float | None
    kinds: dict[str, ReviewKind]
    drill: Drill


class Estimate(TypedDict):
    n: int
    correct: int
    accuracy: float | None
    low: float
    high: float


class TierEstimate(Estimate):
    tier: str
    volume: int


class WeightedEstimate(TypedDict):
    accuracy: float | None
    low: float
    high: float
    effective_n: float
    volume: int
    covered_volume: int


class AccuracySection(TypedDict):
    scope: str
    pooled: Estimate
    weighted: WeightedEstimate
    tiers: list[TierEstimate]
    drill: Drill


class ConfusionCell(TypedDict):
    truth: str
    predicted: str
    count: int
    drill: Drill


class ConfusionSection(TypedDict):
    labels: list[str]
    cells: list[ConfusionCell]
    labelled: int


class SlaPool(TypedDict):
    pool: str | None
    count: int


class SlaSection(TypedDict):
    breaches: int
    by_pool: list[SlaPool]
    drill: Drill

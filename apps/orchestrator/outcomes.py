"""What a routing run produces: one draft per tier's attempt (saved as RoutingDecision rows by
the service that ran the pipeline) and the outcome, where the text goes and why."""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from apps.orchestrator.local_model import LocalClassifier
from apps.orchestrator.models import ModelVersion, PromptVersion, RoutingDecision, RoutingRule
from apps.orchestrator.pricing import Usage
from apps.pools.models import Intent, Pool


class ReviewReason:
    LOW_CONFIDENCE = "low_confidence"
    NO_POOL_FITS = "no_pool_fits"
    INVALID_OUTPUT = "invalid_output"
    CONSISTENCY = "consistency_failure"
    INJECTION = "suspected_injection"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    LLM_DISABLED = "llm_disabled"
    REFUSED_INPUT = "refused_input"
    HUMAN_REQUESTED = "human_requested_no_pool"


# Where a routing run sends the text (the pipeline's answer, not a tier's action).
OutcomeAction = Literal["route", "clarify", "review"]


@dataclass
class DecisionDraft:
    tier: RoutingDecision.Tier
    action: RoutingDecision.Action
    pool: Pool | None = None
    intent: Intent | None = None  # the intent of `pool` a local model of intents routed on
    confidence: float | None = None
    reason: str = ""
    model: str = ""
    prompt_version: PromptVersion | None = None
    model_version: ModelVersion | None = None
    rule: RoutingRule | None = None
    raw_output: str = ""
    valid: bool = True
    error: str = ""
    latency_ms: float = 0.0
    attempts: int = 0  # HTTP requests of a provider call (retries included)
    usage: Usage = field(default_factory=Usage)
    cost: Decimal = Decimal(0)
    # This attempt ended the run: it is the outcome (stored as RoutingDecision.ends_run).
    ends_run: bool = False


@dataclass
class RoutingOutcome:
    """Where a text goes: `route` to a pool, `clarify` (pool known, facts missing) or `review`."""

    action: OutcomeAction
    pool: Pool | None
    trail: list[DecisionDraft]
    redacted: str
    injection: bool = False
    review_reason: str = ""
    missing_fields: list[str] = field(default_factory=list)
    candidates: dict[str, float] = field(default_factory=dict)

    @property
    def deciding(self) -> DecisionDraft:
        """The attempt that decided where the text goes: the last of the trail."""
        return self.trail[-1]


@dataclass(frozen=True)
class LocalTier:
    version: ModelVersion
    classifier: LocalClassifier
    threshold: float
    # A model of intents: the intents it knows that are stored (`Intent`), by slug.
    intents: dict[str, Intent] = field(default_factory=dict)
    # Pools with a lower threshold of their own (ModelVersion.pool_thresholds).
    pool_thresholds: dict[str, float] = field(default_factory=dict)

    def threshold_for(self, label: str) -> float:
        """The score (Prediction.score) at or above which the local tier decides `label`: the
        version's threshold, or the pool's own when it is lower."""
        return min(self.threshold, self.pool_thresholds.get(label, self.threshold))

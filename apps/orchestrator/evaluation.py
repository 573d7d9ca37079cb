"""Routing quality of the whole pipeline on labelled texts (evaluate_router)."""

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal

from apps.orchestrator.local_model import OTHER, Prediction
from apps.orchestrator.models import RoutingDecision
from apps.orchestrator.pipeline import RoutingPipeline

LLM_TIERS = {RoutingDecision.Tier.LLM, RoutingDecision.Tier.ESCALATION}
REVIEW = "(review)"


@dataclass
class PipelineEvaluation:
    n: int
    accuracy: float
    macro_f1: float
    per_pool: dict[str, dict[str, float]]
    confusion: dict[str, dict[str, int]]
    tier_share: dict[str, float]
    llm_call_share: float
    review_share: float
    cost_per_1000_usd: float
    latency_p50_ms: float
    latency_p95_ms: float
    # The local model alone, whatever tier decided: its top pool on every text, no threshold
    # (None without an active local model) ...
    full_coverage_accuracy: float | None = None
    # ... its threshold, and per predicted pool the precision of the texts it would route at
    # the threshold routing holds that pool to (score >= it: see Prediction.score) and how many
    # those are (`n`; precision None when 0).
    local_threshold: float | None = None
    local_precision_at_threshold: dict[str, dict[str, float | int | None]] = field(
        default_factory=dict
    )

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def pipeline_evaluate(
    pipeline: RoutingPipeline,
    rows: Sequence[tuple[str, str]],
    *,
    progress: Callable[[Sequence[tuple[str, str]]], Iterable[tuple[str, str]]] = lambda rows: rows,
) -> PipelineEvaluation:
    """Run every text through the pipeline. A text labelled `other` is right when sent to review.

    With an active local model, it also labels every text on its own (the text it would see:
    redacted), for its accuracy at full coverage and its precision per pool at its threshold.
    """
    truths, predictions, tiers = [], [], Counter[str]()
    latencies, llm_calls, cost = [], 0, Decimal(0)
    local_labels: list[tuple[str, Prediction]] = []
    for text, label in progress(rows):
        started = time.perf_counter()
        outcome = pipeline.run(text)
        latencies.append((time.perf_counter() - started) * 1000)
        if pipeline.local is not None:
            local_labels.append(
                (label, pipeline.local.classifier.predict(outcome.redacted or text))
            )
        predicted = (
            outcome.pool.slug if outcome.action in ("route", "clarify") and outcome.pool else REVIEW
        )
        truths.append(REVIEW if label == OTHER else label)
        predictions.append(predicted)
        deciding = [
            d
            for d in outcome.trail
            if d.tier not in (RoutingDecision.Tier.REVIEW, RoutingDecision.Tier.CLARIFY)
        ]
        tiers[
            outcome.deciding.tier
            if outcome.action == "review"
            else (deciding[-1].tier if deciding else "none")
        ] += 1
        llm_calls += any(d.tier in LLM_TIERS for d in outcome.trail)
        cost += sum((d.cost for d in outcome.trail), Decimal(0))
    n = len(rows)
    labels = sorted(set(truths) | set(predictions))
    per_pool: dict[str, dict[str, float]] = {}
    for label in labels:
        tp = sum(t == p == label for t, p in zip(truths, predictions, strict=True))
        fp = sum(p == label and t != label for t, p in zip(truths, predictions, strict=True))
        fn = sum(t == label and p != label for t, p in zip(truths, predictions, strict=True))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_pool[label] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": float(tp + fn),
        }
    confusion: dict[str, dict[str, int]] = {}
    for t, p in zip(truths, predictions, strict=True):
        confusion.setdefault(t, {}).setdefault(p, 0)
        confusion[t][p] += 1
    supported = [v["f1"] for v in per_pool.values() if v["support"]]
    full_coverage_accuracy, local_precision = _local_figures(local_labels, pipeline)
    return PipelineEvaluation(
        n=n,
        accuracy=sum(t == p for t, p in zip(truths, predictions, strict=True)) / n if n else 0.0,
        macro_f1=sum(supported) / len(supported) if supported else 0.0,
        per_pool=per_pool,
        confusion=confusion,
        tier_share={tier: count / n for tier, count in tiers.most_common()},
        llm_call_share=llm_calls / n if n else 0.0,
        review_share=predictions.count(REVIEW) / n if n else 0.0,
        cost_per_1000_usd=float(cost / n * 1000) if n else 0.0,
        latency_p50_ms=_percentile(latencies, 0.5),
        latency_p95_ms=_percentile(latencies, 0.95),
        full_coverage_accuracy=full_coverage_accuracy,
        local_threshold=pipeline.local.threshold if local_labels and pipeline.local else None,
        local_precision_at_threshold=local_precision,
    )


def _local_figures(
    labelled: Sequence[tuple[str, Prediction]], pipeline: RoutingPipeline
) -> tuple[float | None, dict[str, dict[str, float | int | None]]]:
    """The local model alone: accuracy at full coverage, precision per pool at its threshold."""
    if pipeline.local is None or not labelled:
        return None, {}
    per_pool: dict[str, dict[str, float | int | None]] = {}
    for pool in sorted({truth for truth, _ in labelled} | {p.label for _, p in labelled}):
        # The threshold routing holds this pool to: the version's, or the pool's own if lower.
        threshold = pipeline.local.threshold_for(pool)
        routed = [truth for truth, p in labelled if p.label == pool and p.score >= threshold]
        per_pool[pool] = {
            "precision": routed.count(pool) / len(routed) if routed else None,
            "n": len(routed),
        }
    return sum(truth == p.label for truth, p in labelled) / len(labelled), per_pool


# Rows of the side-by-side comparison: label, field, format.
COMPARED_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("texts", "n", "{:d}"),
    ("accuracy", "accuracy", "{:.4f}"),
    ("macro-F1", "macro_f1", "{:.4f}"),
    ("LLM-call share", "llm_call_share", "{:.4f}"),
    ("review share", "review_share", "{:.4f}"),
    ("cost per 1,000 tickets $", "cost_per_1000_usd", "{:.4f}"),
    ("latency p50 ms", "latency_p50_ms", "{:.2f}"),
    ("latency p95 ms", "latency_p95_ms", "{:.2f}"),
)


def evaluations_side_by_side(columns: Sequence[tuple[str, PipelineEvaluation]]) -> list[str]:
    """Text lines comparing evaluations in columns (e.g. one per prompt version): the headline
    figures, then F1 per pool."""
    width = max(10, *(len(name) + 2 for name, _ in columns))
    lines = [f"{'':26}" + "".join(f"{name:>{width}}" for name, _ in columns)]
    for label, attribute, spec in COMPARED_FIGURES:
        values = "".join(
            f"{spec.format(getattr(result, attribute)):>{width}}" for _, result in columns
        )
        lines.append(f"{label:26}{values}")
    pools = sorted({pool for _, result in columns for pool in result.per_pool})
    for pool in pools:
        values = "".join(
            f"{result.per_pool[pool]['f1']:>{width}.3f}"
            if pool in result.per_pool
            else f"{'—':>{width}}"
            for _, result in columns
        )
        lines.append(f"{('F1 ' + pool)[:26]:26}{values}")
    return lines

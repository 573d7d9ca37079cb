"""A fast start for new pools: each pool's own threshold, chosen by a retraining on every label
scored out of sample (see retrain.py and `local_model.pool_thresholds`)."""

import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from apps.orchestrator.local_model import Prediction, pool_thresholds, threshold_for_precision


@dataclass(frozen=True)
class FastStart:
    """Pool slug -> its own threshold, and the figures a version's metrics keep (`pools`)."""

    thresholds: dict[str, float]
    figures: dict[str, Any]


def pool_thresholds_choose(
    predictions: list[Prediction], truths: list[str], *, known: set[str]
) -> FastStart:
    """Pools' own thresholds (see `pool_thresholds`), chosen on the labels predicted out of
    sample that are not the local tier's own: people's, and the LLM's confident answers
    (distilled). While people's labels are few, the distilled ones (ordinary traffic) are most
    of what shows where the model can be trusted; a wrong one counts as the model's misroute,
    which errs safe. The local tier's unmoved routes are not among them (retrain.py): a model
    like it agrees with its own answers whether they were right or not."""
    target = float(settings.ROUTER_POOL_TARGET_PRECISION)
    floor_precision = float(settings.ROUTER_FAST_START_PRECISION)
    min_accepted = int(settings.ROUTER_FAST_START_MIN_ACCEPTED)
    floor = threshold_for_precision(
        predictions, truths, target_precision=floor_precision, min_accepted=min_accepted
    )
    thresholds = pool_thresholds(
        predictions,
        truths,
        pools=known,
        floor=floor,
        target_precision=target,
        prior_strength=float(settings.ROUTER_POOL_PRIOR_STRENGTH),
        min_support=int(settings.ROUTER_POOL_MIN_SUPPORT),
    )
    per_pool: dict[str, dict[str, float | None]] = {}
    for pool, value in thresholds.items():
        accepted = [
            p.label == truth
            for p, truth in zip(predictions, truths, strict=True)
            if p.label == pool and p.score >= value
        ]
        per_pool[pool] = {
            "threshold": value,
            "accepted": len(accepted),
            "precision": sum(accepted) / len(accepted) if accepted else None,
        }
    routed = [
        p.label == truth
        for p, truth in zip(predictions, truths, strict=True)
        if p.label in thresholds and p.score >= thresholds[p.label]
    ]
    figures = {
        "labels_scored": len(truths),
        "floor": min(floor, 1.0),
        "floor_met": math.isfinite(floor),
        "target_precision": target,
        "floor_precision": floor_precision,
        "pools": len(thresholds),
        "auto_routed_share": len(routed) / len(truths) if truths else 0.0,
        "precision": sum(routed) / len(routed) if routed else None,
        "per_pool": per_pool,
    }
    return FastStart(thresholds, figures)

"""Scoring the local model on labelled texts, and the thresholds chosen from it.

A threshold holds against a prediction's `score`: its margin over the runner-up for a model that
routes on it (with the neighbour gap where the model keeps its training texts' embeddings), its
confidence for one stored before (see `Prediction.score`)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from apps.orchestrator.local_model.classifier import LocalClassifier
from apps.orchestrator.local_model.examples import OTHER
from apps.orchestrator.local_model.prediction import Prediction


@dataclass(frozen=True)
class Evaluation:
    """Accuracy, macro-F1, per-label figures, confusion and calibration on a labelled set."""

    accuracy: float
    macro_f1: float
    per_label: dict[str, dict[str, float]]  # label -> precision, recall, f1, support
    confusion: dict[str, dict[str, int]]  # true -> predicted -> count (only non-zero cells)
    ece: float  # expected calibration error, 10 equal-width bins of confidence
    n: int
    # Mean squared gap between the top label's confidence and whether it was right: a proper
    # scoring rule (no bins), lower when confidences are both calibrated and sharp.
    brier: float = 0.0
    # Each text's (confidence - right)^2, in the order scored: two models scored on the same
    # texts are compared text by text (the retraining gate).
    brier_terms: tuple[float, ...] = ()


def evaluate(
    classifier: LocalClassifier, *, texts: Sequence[str], labels: Sequence[str]
) -> Evaluation:
    """Score the classifier on labelled texts: accuracy, macro-F1 over all labels seen, ECE."""
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    predictions = classifier.predict_many(texts)
    n = len(labels)
    confusion: dict[str, dict[str, int]] = {}
    for truth, prediction in zip(labels, predictions, strict=True):
        row = confusion.setdefault(truth, {})
        row[prediction.label] = row.get(prediction.label, 0) + 1
    names = sorted(set(labels) | {prediction.label for prediction in predictions})
    per_label: dict[str, dict[str, float]] = {}
    for name in names:
        hits = confusion.get(name, {}).get(name, 0)
        support = sum(confusion.get(name, {}).values())
        predicted = sum(row.get(name, 0) for row in confusion.values())
        precision = hits / predicted if predicted else 0.0
        recall = hits / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[name] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": float(support),
        }
    correct = [p.label == truth for p, truth in zip(predictions, labels, strict=True)]
    terms = tuple((p.confidence - hit) ** 2 for p, hit in zip(predictions, correct, strict=True))
    return Evaluation(
        accuracy=sum(correct) / n if n else 0.0,
        macro_f1=sum(figures["f1"] for figures in per_label.values()) / len(names)
        if names
        else 0.0,
        per_label=per_label,
        confusion=confusion,
        ece=_expected_calibration_error([p.confidence for p in predictions], correct),
        n=n,
        brier=sum(terms) / n if n else 0.0,
        brier_terms=terms,
    )


def min_support(*, error_rate: float, floor: int) -> int:
    """How many labelled accepted messages a threshold for `error_rate` must rest on: `floor`,
    and at least 1/error_rate, below which one error more would break the target."""
    return max(floor, math.ceil(1 / error_rate)) if error_rate > 0 else floor


def threshold_for_precision(
    predictions: Sequence[Prediction],
    labels: Sequence[str],
    *,
    target_precision: float,
    min_accepted: int = 1,
) -> float:
    """Lowest threshold whose accepted set (score >= it) reaches the precision,
    among thresholds that accept at least `min_accepted` labelled messages.

    Returns math.inf (accept nothing) when no such threshold reaches it.
    """
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels")
    if not 0.0 < target_precision <= 1.0:
        raise ValueError("target_precision must be in (0, 1]")
    ranked = sorted(
        ((p.score, p.label == truth) for p, truth in zip(predictions, labels, strict=True)),
        key=lambda pair: -pair[0],
    )
    best = math.inf
    correct = 0
    for i, (score, is_correct) in enumerate(ranked):
        accepted = i + 1
        correct += is_correct
        # A threshold accepts every prediction with the same score, so only the last of a run
        # of equal scores is a real choice.
        last_of_tie = i + 1 == len(ranked) or ranked[i + 1][0] < score
        if last_of_tie and accepted >= min_accepted and correct >= target_precision * accepted:
            best = score
    return best


def misroute_rate(
    predictions: Sequence[Prediction], labels: Sequence[str], *, threshold: float
) -> tuple[float, float]:
    """(misroute rate, auto-routed share) of a threshold on labelled predictions.

    Auto-routed: a pool label (not OTHER) with score >= threshold; misrouted: auto-routed
    to a label that is not the truth. The rate is 0.0 when nothing is auto-routed.
    """
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels")
    routed = [
        p.label != truth
        for p, truth in zip(predictions, labels, strict=True)
        if p.label != OTHER and p.score >= threshold
    ]
    if not routed:
        return 0.0, 0.0
    return sum(routed) / len(routed), len(routed) / len(labels)


def threshold_for_misroute_rate(
    predictions: Sequence[Prediction],
    labels: Sequence[str],
    *,
    target_rate: float,
    min_routed: int = 1,
) -> float:
    """Lowest threshold at which the auto-routed messages' misroute rate is within
    the target (see `misroute_rate`; a confident OTHER goes to a person, so it is never a
    misroute), among thresholds that auto-route at least `min_routed` labelled messages: a rate
    measured on fewer says little (below 1/target messages, one error more breaks the target).

    Returns math.inf (auto-route nothing) when no such threshold reaches it.
    """
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels")
    if not 0.0 <= target_rate < 1.0:
        raise ValueError("target_rate must be in [0, 1)")
    ranked = sorted(
        (
            (p.score, p.label != truth)
            for p, truth in zip(predictions, labels, strict=True)
            if p.label != OTHER
        ),
        key=lambda pair: -pair[0],
    )
    best = math.inf
    wrong = 0
    for i, (score, is_wrong) in enumerate(ranked):
        wrong += is_wrong
        # As in threshold_for_precision: a threshold accepts a whole run of equal scores.
        last_of_tie = i + 1 == len(ranked) or ranked[i + 1][0] < score
        if last_of_tie and i + 1 >= min_routed and wrong / (i + 1) <= target_rate:
            best = score
    return best


def _expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool]) -> float:
    n = len(confidences)
    bins: list[list[tuple[float, bool]]] = [[] for _ in range(10)]
    for confidence, is_correct in zip(confidences, correct, strict=True):
        bins[min(9, max(0, math.ceil(confidence * 10) - 1))].append((confidence, is_correct))
    return sum(
        len(members)
        / n
        * abs(
            sum(c for _, c in members) / len(members)
            - sum(confidence for confidence, _ in members) / len(members)
        )
        for members in bins
        if members
    )


def pool_thresholds(
    predictions: Sequence[Prediction],
    labels: Sequence[str],
    *,
    pools: Iterable[str],
    floor: float,
    target_precision: float,
    prior_strength: float,
    min_support: int = 0,
) -> dict[str, float]:
    """Each pool's own threshold, chosen on out-of-sample predictions of labelled
    texts; a pool that no threshold qualifies is left out, and the local tier passes its
    messages on to the next tier.

    A pool's precision at a threshold is measured on its accepted predictions (its label,
    score >= the threshold) and shrunk towards the precision of every pool's accepted
    predictions at that threshold, as if `prior_strength` more of them had that precision:
    (right + prior_strength * overall) / (accepted + prior_strength). A pool of a few labelled
    texts then rests on what the model shows on all pools, and each of its own errors moves it
    down at once. The threshold is the lowest score (`floor` or one of the pool's
    predictions') at which the shrunk precision reaches `target_precision` with at least
    `min_support` accepted predictions of the pool; below `floor` (where every pool's precision
    is not shown to hold; math.inf: nowhere) at least one. So a pool never predicted can only
    get the floor, and a pool the model tells apart gets a threshold even while others drag
    every pool's precision down. OTHER never gets one: a confident `other` goes to a person,
    not to a pool.
    """
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels")
    if not 0.0 < target_precision <= 1.0:
        raise ValueError("target_precision must be in (0, 1]")
    scored = [
        (p.score, p.label, p.label == truth)
        for p, truth in zip(predictions, labels, strict=True)
        if p.label != OTHER
    ]
    # Every pool's accepted predictions at a threshold: a prefix by descending score.
    ordered = sorted(scored, key=lambda row: -row[0])
    descending = [-score for score, _, _ in ordered]
    right_before = [0]
    for _, _, is_right in ordered:
        right_before.append(right_before[-1] + is_right)

    def overall(threshold: float) -> float:
        accepted = bisect.bisect_right(descending, -threshold)
        return right_before[accepted] / accepted if accepted else 0.0

    by_pool: dict[str, list[tuple[float, bool]]] = {}
    for score, label, is_right in ordered:
        by_pool.setdefault(label, []).append((score, is_right))
    chosen: dict[str, float] = {}
    for pool in sorted(set(pools) - {OTHER}):
        rows = by_pool.get(pool, [])
        right = 0
        candidates: list[tuple[float, int, int]] = []  # (threshold, accepted, right)
        for i, (score, is_right) in enumerate(rows):
            right += is_right
            # As in threshold_for_precision: a threshold accepts a whole run of equal scores.
            if i + 1 == len(rows) or rows[i + 1][0] < score:
                candidates.append((score, i + 1, right))
        if math.isfinite(floor) and all(score != floor for score, _ in rows):
            # The floor itself, with the pool's predictions at or above it.
            above = [(c, ok) for c, ok in rows if c >= floor]
            candidates.append((floor, len(above), sum(ok for _, ok in above)))
            candidates.sort(key=lambda row: -row[0])
        for threshold, accepted, hits in candidates:
            needed = min_support if threshold >= floor else max(min_support, 1)
            prior = prior_strength * overall(threshold)
            shrunk = (hits + prior) / (accepted + prior_strength) if accepted or prior else 0.0
            if accepted >= needed and shrunk >= target_precision:
                chosen[pool] = threshold
    return chosen

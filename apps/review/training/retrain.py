"""Retraining from corrections: the labels people give routing (review and audit verdicts, agents'
"wrong pool" moves) and, weighted lower, the LLM's confident decisions and the local tier's
routes nobody moved (`labels.training_labels`); retraining the local model from them behind a
no-regression gate; and switching (or rolling back) the active model.

The base. A retraining starts from the curated examples earlier models were trained on
(`TrainingExample`, kept by `train_router` and `seed_demo`; see `training_base`), restricted to
the active pools, and adds people's labels (weight 1) and those from decisions (distilled and
unmoved).

The gate. Human labels are split by a hash of (seed, ticket id) into a training part and a
held-out slice (`label_held_out`). The hash keeps a ticket on its side as labels accumulate, so
a model trained by an earlier retraining has never seen the slice it is now compared on; exact
per-label stratification would move tickets between the sides as counts grow, and the active
model would be scored on texts it was trained on. The slice is therefore proportional per label
only in expectation. A candidate is trained on the base, the training part and the labels from
decisions (weights `ROUTER_DISTILL_WEIGHT`, `ROUTER_UNMOVED_WEIGHT`), and it and the active
model are scored on the same held-out slice. The candidate is activated only if its accuracy
is at least the active model's and its Brier score (of the top label's confidence) at most the
active model's: a proper scoring rule that punishes over- and under-confidence without the
binning noise that makes ECE on a few dozen texts move by hundredths from one text more or
less (ECE is still reported). A candidate that has no threshold holding the target (see below)
is not activated while the active model auto-routes part of the slice within the target: it
would stop the local tier routing. Otherwise it is stored inactive, with both evaluations and
the reason.

The stored artifact is the evaluated one: the held-out labels are not folded back in after the
gate, since a model retrained on everything would be one nobody measured, and its threshold
would no longer hold what it claims. The held-out slice keeps teaching through the gate instead.

The threshold. It is chosen on every human label, each predicted by a model that never saw it:
the held-out slice by the candidate, the training part by `ROUTER_RETRAIN_FOLDS` models trained
without one fold each (folds by a hash of the ticket id). It is the lowest score (the top
pool's probability less the runner-up's: `Prediction.score`) at which the misroute rate (a
wrong pool among auto-routed texts; a confident `other` goes to a person and is not
auto-routed) is at most `ROUTER_TARGET_MISROUTE_RATE`, among thresholds that auto-route at
least max(`ROUTER_THRESHOLD_MIN_ROUTED`, 1/target) labelled texts. When none does, the
threshold is 1.0: the local tier then passes everything to the next tier (bar a margin of
exactly 1.0), and the metrics say so. People's labels over-represent hard texts (reviews are
the doubtful ones, reroutes the LLM's mistakes), so the rate measured on them errs on the high
side: the threshold is, if anything, conservative.

A fast start for new pools. That threshold needs 50 routes measured on people's labels, which a
deployment with many pools reaches only after thousands of tickets. So a pool may also get a
threshold of its own (`ModelVersion.pool_thresholds`; the local tier uses the lower one), chosen
on the labels scored out of sample, people's and the distilled LLM answers (not the local tier's
unmoved routes, which a model like it agrees with, right or wrong), where the pool's precision
shrunk towards every pool's reaches ROUTER_POOL_TARGET_PRECISION (see `pool_thresholds`). And
`model_version_retrain_when_due` (a beat task) retrains as soon as the labels have grown enough
since the last retraining, so a new deployment does not wait a day for its first model.
"""

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from scipy.stats import ttest_rel

from apps.core.errors import ValidationFailed
from apps.orchestrator import selectors
from apps.orchestrator.local_model import (
    OTHER,
    Evaluation,
    LocalClassifier,
    Prediction,
    evaluate,
    min_support,
    misroute_rate,
    threshold_for_misroute_rate,
)
from apps.orchestrator.local_model.embeddings import Remembering, TextEmbedder
from apps.orchestrator.models import ModelVersion
from apps.pools.selectors import intent_pools, pool_list
from apps.review.models import RoutingLabel
from apps.review.training.examples import training_base
from apps.review.training.fast_start import pool_thresholds_choose
from apps.review.training.labels import (
    DISTILLED,
    UNMOVED,
    TrainingLabel,
    label_held_out,
    training_labels,
)
from apps.review.training.versions import model_version_activate

logger = logging.getLogger(__name__)


# How much higher a candidate's Brier score may be than the active model's: rounding. Beyond
# it, the candidate is held back only when the per-text differences show it worse at this
# one-sided significance level (a paired t-test): on 40-80 held-out texts a difference of a few
# thousandths is noise, and a 150-pool benchmark stream kept back candidates 3.8-9.3 points
# more accurate on Brier scores 0.002-0.003 above the active model's.
BRIER_TOLERANCE = 0.001
BRIER_SIGNIFICANCE = 0.05
# Fewest held-out labels the gate compares the two models on: on a handful of texts (a new
# deployment's first retrainings) one text more moves accuracy and the Brier score by more than
# the differences they would judge, and a candidate trained on more labels is not kept back by
# that noise (a 150-pool benchmark stream kept back six of its first eight candidates on 6-11
# labels: the active model right on 6 of 6 to 10 of 11, they on 4 of 6 to 9 of 11).
GATE_MIN_HELD_OUT = 30


@dataclass(frozen=True)
class RetrainResult:
    """What a retraining did: the version stored (None when it trained nothing) and why."""

    version: ModelVersion | None
    activated: bool
    reason: str
    metrics: dict[str, Any]


def model_version_retrain(
    *,
    seed: int = 0,
    holdout_share: float = 0.3,
    target_misroute_rate: float | None = None,
    min_labels: int | None = None,
    force: bool = False,
) -> RetrainResult:
    """Train a candidate local model from the base examples and the labels, gate it against the
    active model on held-out human labels, store it signed, and activate it if it does no worse.

    Returns without training when there are fewer than `min_labels` human labels (default
    ROUTER_RETRAIN_MIN_LABELS), when no label falls in the held-out slice, or (unless `force`)
    when a version was already trained on exactly these labels and settings.
    """
    target = (
        settings.ROUTER_TARGET_MISROUTE_RATE
        if target_misroute_rate is None
        else target_misroute_rate
    )
    needed = settings.ROUTER_RETRAIN_MIN_LABELS if min_labels is None else min_labels
    if not 0.0 < holdout_share < 1.0:
        raise ValidationFailed("The held-out share must be between 0 and 1.")
    if not 0.0 <= target < 1.0:
        raise ValidationFailed("The target misroute rate must be at least 0 and below 1.")
    known = set(pool_list().values_list("slug", flat=True)) | {OTHER}
    intents = intent_pools()
    labels = [label for label in training_labels() if label.label in known]
    human = [label for label in labels if label.from_people]
    decided = [label for label in labels if not label.from_people]  # distilled and unmoved
    held: list[TrainingLabel] = []
    train: list[TrainingLabel] = []
    for x in human:
        held_out = label_held_out(ticket_id=x.ticket_id, seed=seed, share=holdout_share)
        (held if held_out else train).append(x)
    counts: dict[str, Any] = {
        "human": len(human),
        "by_source": {
            source: sum(x.source == source for x in human) for source in RoutingLabel.Source.values
        },
        "train": len(train),
        "holdout": len(held),
        "distilled": sum(x.source == DISTILLED for x in decided),
        "distill_weight": float(settings.ROUTER_DISTILL_WEIGHT),
        "unmoved": sum(x.source == UNMOVED for x in decided),
        "unmoved_weight": float(settings.ROUTER_UNMOVED_WEIGHT),
    }
    if len(human) < needed:
        reason = f"{len(human)} labels from people; retraining needs {needed}"
        return RetrainResult(None, False, reason, {"labels": counts})
    if not held:
        return RetrainResult(None, False, "no label fell in the held-out slice", {"labels": counts})
    base = [(text, label, 1.0) for text, label in training_base(labels=known | set(intents))]
    groups = _groups(base, intents=intents, pools=known)
    settings_used = {"seed": seed, "holdout_share": holdout_share, "target": target}
    fingerprint = _fingerprint(labels, known, settings_used, base, groups)
    same = (
        ModelVersion.objects.filter(metrics__retrain__fingerprint=fingerprint)
        .values_list("pk", flat=True)
        .first()
    )
    if same is not None and not force:
        reason = f"nothing new since local model v{same}"
        return RetrainResult(None, False, reason, {"labels": counts})

    counts["base_examples"] = len(base)
    extra = [(x.text, x.label, x.weight) for x in decided]
    rows = base + extra + [(x.text, x.label, x.weight) for x in train]
    # With the embedding tier on, the candidate and every fold model average TF-IDF with
    # embeddings, as routing will, so the thresholds are measured on what routing computes. Each
    # text is embedded once for all of them.
    found = selectors.local_embedder()
    embedder = Remembering(found) if found is not None else None
    candidate = _train(rows, seed=seed, embedder=embedder, groups=groups)
    held_texts, held_truth = [x.text for x in held], [x.label for x in held]
    candidate_eval = evaluate(candidate, texts=held_texts, labels=held_truth)

    # The threshold is chosen on every human label, each predicted by a model that did not
    # see it: the held-out slice by the candidate, the training part by k-fold models. The
    # folds split the labels from decisions too: the distilled ones are scored for the pools'
    # own thresholds; the unmoved ones only train. An unmoved route is the local tier's own
    # answer, which a model like it agrees with whether it was right or not.
    folds = max(2, int(settings.ROUTER_RETRAIN_FOLDS))
    predictions: list[Prediction] = candidate.predict_many(held_texts)
    truths: list[str] = list(held_truth)
    learnt = train + decided
    fold_of = [_fold_of(x.ticket_id, seed=seed, folds=folds) for x in learnt]
    decided_predictions: list[Prediction] = []
    decided_truths: list[str] = []
    for fold in range(folds):
        inside = [
            x for x, f in zip(learnt, fold_of, strict=True) if f == fold and x.source != UNMOVED
        ]
        if not inside:
            continue
        outside = [
            (x.text, x.label, x.weight) for x, f in zip(learnt, fold_of, strict=True) if f != fold
        ]
        model = _train(base + outside, seed=seed, embedder=embedder, groups=groups)
        for x, prediction in zip(inside, model.predict_many([x.text for x in inside]), strict=True):
            if not x.from_people:
                decided_predictions.append(prediction)
                decided_truths.append(x.label)
            else:
                predictions.append(prediction)
                truths.append(x.label)
    min_routed = _min_routed(target)
    best = threshold_for_misroute_rate(
        predictions, truths, target_rate=target, min_routed=min_routed
    )
    threshold = min(best, 1.0)
    rate, routed_share = misroute_rate(predictions, truths, threshold=threshold)
    fast_start = pool_thresholds_choose(
        predictions + decided_predictions, truths + decided_truths, known=known
    )

    active_id = ModelVersion.objects.filter(active=True).values_list("pk", flat=True).first()
    active = selectors.local_tier_active()
    active_figures: dict[str, Any] | None = None
    if active is not None:
        active_eval = evaluate(active.classifier, texts=held_texts, labels=held_truth)
        active_rate, active_share = misroute_rate(
            active.classifier.predict_many(held_texts), held_truth, threshold=active.threshold
        )
        active_figures = {
            "version": active.version.pk,
            **_figures(active_eval),
            "threshold": active.threshold,
            "misroute_rate": active_rate,
            "auto_routed_share": active_share,
        }
        passed, why = _gate(candidate_eval, active_eval, active.version)
        if passed and not math.isfinite(best) and active_share > 0 and active_rate <= target:
            # Better in accuracy, but with no threshold it can be trusted at, it would stop the
            # local tier routing while the active model still holds the target on the slice.
            passed, why = (
                False,
                f"no threshold holds {target:.1%} yet, while the active v{active.version.pk} "
                f"auto-routes {active_share:.1%} of the held-out slice with "
                f"{active_rate:.1%} misrouted",
            )
    elif active_id is not None:
        passed, why = True, f"the active v{active_id} cannot be loaded (bad signature)"
    else:
        passed, why = True, "no active model to compare with"

    metrics: dict[str, Any] = {
        # The figures train_router also writes, for lists and commands that read either.
        "accuracy": candidate_eval.accuracy,
        "macro_f1": candidate_eval.macro_f1,
        "ece": candidate_eval.ece,
        "per_label": candidate_eval.per_label,
        "holdout": candidate_eval.n,
        "labels": counts,
        "candidate": _figures(candidate_eval),
        "active": active_figures,
        "gate": {
            "passed": passed,
            "reason": why,
            "brier_tolerance": BRIER_TOLERANCE,
            "brier_significance": BRIER_SIGNIFICANCE,
        },
        "threshold": {
            "value": threshold,
            "target_misroute_rate": target,
            "met": math.isfinite(best),
            "misroute_rate": rate,
            "auto_routed_share": routed_share,
            "labels_scored": len(truths),
            "folds": folds,
            "min_routed": min_routed,
            "with_embeddings": candidate.uses_embeddings,
        },
        "pools": fast_start.figures,
        "retrain": {**settings_used, "fingerprint": fingerprint},
        # The embedding weight w and the held-out accuracy of each w (0 with the tier off).
        **candidate.embedding_report,
    }
    if not math.isfinite(best):
        metrics["threshold"]["note"] = (
            f"no threshold auto-routes at least {min_routed} of the {len(truths)} labelled "
            f"texts with misroutes at or below {target:.1%}; 1.0 sends everything to the next "
            "tier"
        )
    artifact = candidate.to_bytes()
    with transaction.atomic():
        current = (
            ModelVersion.objects.select_for_update()
            .filter(active=True)
            .values_list("pk", flat=True)
            .first()
        )
        if passed and current != active_id:
            passed = False
            why = f"the active model changed during retraining (v{active_id} → v{current})"
            metrics["gate"].update(passed=False, reason=why)
        verdict = "activated" if passed else "kept inactive"
        version = ModelVersion.objects.create(
            labels=candidate.labels,
            kind=ModelVersion.Kind.POOL if groups is None else ModelVersion.Kind.INTENT,
            artifact=artifact,
            signature=selectors.artifact_signature(artifact),
            metrics=metrics,
            threshold=threshold,
            pool_thresholds=fast_start.thresholds,
            training_examples=len(rows),
            note=f"retrain_router: {verdict}: {why}"[:300],
            active=False,
        )
        if passed:
            model_version_activate(version=version, actor=None, note=f"retraining: {why}")
            version.active = True
    logger.info("retraining stored %s, %s: %s", version, verdict, why)
    return RetrainResult(version, passed, why, metrics)


def model_version_retrain_due() -> tuple[bool, int, int]:
    """Whether enough labels arrived since the newest retraining to retrain now: (due, labels
    now, labels the newest retraining learnt from).

    Due when the labels (people's and from decisions, of active pools) have grown by
    ROUTER_RETRAIN_GROWTH of what it learnt from, and by at least ROUTER_RETRAIN_NEW_LABELS:
    with the defaults (0.25, 25) at 25, 50, 75, 100, 125, 157, 197, ... labels. A model learns
    most from its first labels: a new deployment retrains every few dozen tickets, a settled
    one seldom.
    """
    known = set(pool_list().values_list("slug", flat=True)) | {OTHER}
    now = sum(label.label in known for label in training_labels())
    newest = (
        ModelVersion.objects.filter(metrics__has_key="retrain")
        .order_by("-created_at", "-id")
        .values_list("metrics", flat=True)
        .first()
    )
    learnt = 0
    if isinstance(newest, dict):
        counts = newest.get("labels", {})
        learnt = sum(int(counts.get(kind, 0)) for kind in ("human", "distilled", "unmoved"))
    needed = max(
        int(settings.ROUTER_RETRAIN_NEW_LABELS),
        math.ceil(float(settings.ROUTER_RETRAIN_GROWTH) * learnt),
    )
    return now - learnt >= needed, now, learnt


def model_version_retrain_when_due(
    *, seed: int = 0, holdout_share: float = 0.3, target_misroute_rate: float | None = None
) -> RetrainResult:
    """Retrain (see `model_version_retrain`) when `model_version_retrain_due` says enough new
    labels arrived; otherwise return without training."""
    due, now, learnt = model_version_retrain_due()
    if not due:
        reason = f"{now - learnt} new labels since the last retraining; not due yet"
        return RetrainResult(None, False, reason, {"labels": {"now": now, "learnt": learnt}})
    return model_version_retrain(
        seed=seed, holdout_share=holdout_share, target_misroute_rate=target_misroute_rate
    )


def _gate(
    candidate: Evaluation, active: Evaluation, active_version: ModelVersion
) -> tuple[bool, str]:
    """Accuracy no lower and confidences no worse (Brier score: see `_brier_worse`) than the
    active model's, on the same held-out labels, when there are GATE_MIN_HELD_OUT of them or
    more; on fewer, the candidate (trained on more labels) passes."""
    figures = (
        f"accuracy {candidate.accuracy:.3f} vs {active.accuracy:.3f}, "
        f"Brier {candidate.brier:.3f} vs {active.brier:.3f} (v{active_version.pk})"
    )
    if candidate.n < GATE_MIN_HELD_OUT:
        return True, f"{candidate.n} held-out labels, too few to compare on: {figures}"
    if candidate.accuracy < active.accuracy:
        return False, f"less accurate than the active model: {figures}"
    worse, p_value = _brier_worse(candidate, active)
    if worse:
        return False, f"worse calibrated than the active model: {figures}, p = {p_value:.3f}"
    return True, f"no worse than the active model: {figures}"


def _brier_worse(candidate: Evaluation, active: Evaluation) -> tuple[bool, float]:
    """Whether the candidate's Brier score is worse than the active model's: above it by more
    than BRIER_TOLERANCE and, where both scored the same texts, by a paired one-sided t-test at
    BRIER_SIGNIFICANCE; and the test's p-value (0.0 without per-text terms to test)."""
    if candidate.brier <= active.brier + BRIER_TOLERANCE:
        return False, 1.0
    pairs = len(candidate.brier_terms)
    if pairs < 2 or pairs != len(active.brier_terms):
        return True, 0.0
    differences = [c - a for c, a in zip(candidate.brier_terms, active.brier_terms, strict=True)]
    if max(differences) - min(differences) < 1e-12:
        return True, 0.0  # every text worse by the same amount: no variance, certainly worse
    test = ttest_rel(candidate.brier_terms, active.brier_terms, alternative="greater")
    p_value = float(test.pvalue)
    return p_value < BRIER_SIGNIFICANCE, p_value


def _figures(evaluation: Evaluation) -> dict[str, Any]:
    return {
        "accuracy": evaluation.accuracy,
        "macro_f1": evaluation.macro_f1,
        "ece": evaluation.ece,
        "brier": evaluation.brier,
        "n": evaluation.n,
    }


def _groups(
    base: list[tuple[str, str, float]], *, intents: dict[str, str], pools: set[str]
) -> dict[str, str] | None:
    """Each label's pool when the base holds intents (a model of intents stays one), else None.

    People's and distilled labels name pools: next to intents, a pool's slug is an intent of
    that pool (as train_router treats the seed examples), so a correction teaches its pool
    without guessing which of the pool's intents it is.
    """
    if not any(label in intents for _, label, _ in base):
        return None
    return {**{pool: pool for pool in pools}, **intents}


def _train(
    rows: list[tuple[str, str, float]],
    *,
    seed: int,
    embedder: TextEmbedder | None,
    groups: dict[str, str] | None = None,
) -> LocalClassifier:
    weights = [weight for _, _, weight in rows]
    return LocalClassifier.train(
        texts=[text for text, _, _ in rows],
        labels=[label for _, label, _ in rows],
        seed=seed,
        sample_weight=None if all(w == 1.0 for w in weights) else weights,
        groups=groups,
        embedder=embedder,
    )


def _fold_of(ticket_id: int, *, seed: int, folds: int) -> int:
    digest = hashlib.blake2b(f"fold:{seed}:{ticket_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % folds


def _min_routed(target: float) -> int:
    return min_support(error_rate=target, floor=int(settings.ROUTER_THRESHOLD_MIN_ROUTED))


def _fingerprint(
    labels: list[TrainingLabel],
    known: set[str],
    used: dict[str, Any],
    base: list[tuple[str, str, float]],
    groups: dict[str, str] | None,
) -> str:
    """A digest of everything a retraining learns from: base examples, labels, active pools,
    intents' pools and settings."""
    payload = {
        "groups": sorted((groups or {}).items()),
        "labels": [[x.ticket_id, x.text, x.label, x.weight, x.source] for x in labels],
        "pools": sorted(known),
        "settings": used,
        "base": hashlib.sha256(repr(base).encode()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

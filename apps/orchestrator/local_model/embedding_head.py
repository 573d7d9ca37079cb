"""The local model's second opinion: a logistic regression on sentence embeddings, averaged
with the TF-IDF model's probabilities.

p = (1 - w) * p_tfidf + w * p_embeddings, over the same labels (intents for a model of
intents). The weight w is chosen at training time on held-out rows: the rows the TF-IDF
model's calibration already holds out (out-of-fold probabilities of both models, each fold's
models fitted without those rows), w from 0 to 1 by 0.1, the highest held-out accuracy winning
and the lower log loss breaking ties. A head with w = 0 is not kept. The head records which
embeddings it was fitted on (`model_id`): with other embeddings, or none (ROUTER_EMBEDDINGS=off),
the classifier uses TF-IDF alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from apps.orchestrator.local_model.features import FloatArray, IntArray

# Inverse regularisation of the logistic regression; CLINC150 (150 intents, 15,000 rows) on
# int8 MiniLM embeddings: test accuracy C=1 / 10 / 30 in docs/benchmarks.md.
_LR_C = 10.0
_LR_MAX_ITER = 1000
WEIGHT_GRID = tuple(round(0.1 * i, 1) for i in range(11))


@dataclass(frozen=True)
class EmbeddingHead:
    """Logistic-regression weights over embeddings and the mixing weight w."""

    coef: NDArray[np.float32]  # labels x embedding dimension
    intercept: FloatArray  # labels
    weight: float  # w in p = (1 - w) * p_tfidf + w * p_embeddings
    model_id: str  # the embeddings it was fitted on

    def probabilities(self, embeddings: NDArray[np.float32]) -> FloatArray:
        """Softmax probabilities per label, one row per embedding."""
        scores = embeddings.astype(np.float64) @ self.coef.T.astype(np.float64) + self.intercept
        scores -= scores.max(axis=1, keepdims=True)
        probabilities: FloatArray = np.exp(scores)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        return probabilities

    def mix(self, tfidf: FloatArray, embeddings: NDArray[np.float32]) -> FloatArray:
        """The averaged probabilities (rows of `tfidf` are the TF-IDF model's)."""
        mixed: FloatArray = (1.0 - self.weight) * tfidf + self.weight * self.probabilities(
            embeddings
        )
        return mixed


def fit_logistic(
    embeddings: NDArray[np.float32],
    y: IntArray,
    n_labels: int,
    *,
    seed: int,
    sample_weight: FloatArray | None = None,
) -> tuple[NDArray[np.float32], FloatArray]:
    """Multinomial logistic regression; weights for every label (labels it never saw get a
    very low score, so they get no probability)."""
    # Imported where a head is fitted: routing with a stored model needs no scikit-learn.
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=_LR_C, max_iter=_LR_MAX_ITER, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(embeddings, y, sample_weight=sample_weight)
    seen: Any = model.classes_
    coef = np.zeros((n_labels, embeddings.shape[1]), dtype=np.float32)
    intercept = np.full(n_labels, -1e4, dtype=np.float64)
    if len(seen) == 2:
        # sklearn keeps one row for two classes: the second's score against the first.
        coef[seen[0]], coef[seen[1]] = -model.coef_[0] / 2, model.coef_[0] / 2
        intercept[seen[0]], intercept[seen[1]] = -model.intercept_[0] / 2, model.intercept_[0] / 2
    else:
        coef[seen] = model.coef_
        intercept[seen] = model.intercept_
    return coef, intercept


def choose_weight(
    tfidf: FloatArray,
    embedding: FloatArray,
    y: IntArray,
    *,
    weights: FloatArray | None = None,
) -> tuple[float, dict[str, float]]:
    """The w of WEIGHT_GRID with the best held-out accuracy (ties: lower log loss, then lower
    w), and the accuracy of each w."""
    if len(y) == 0:
        return 0.0, {}
    best: tuple[float, float, float] | None = None
    accuracy_of: dict[str, float] = {}
    rows = np.arange(len(y))
    for w in WEIGHT_GRID:
        mixed = (1.0 - w) * tfidf + w * embedding
        right = (mixed.argmax(axis=1) == y).astype(np.float64)
        loss = -np.log(np.clip(mixed[rows, y], 1e-12, 1.0))
        accuracy = float(np.average(right, weights=weights))
        log_loss = float(np.average(loss, weights=weights))
        accuracy_of[f"{w:.1f}"] = accuracy
        key = (-accuracy, log_loss, w)
        if best is None or key < best:
            best = key
    assert best is not None
    return best[2], accuracy_of


def fit_head(
    embeddings: NDArray[np.float32],
    y: IntArray,
    n_labels: int,
    *,
    folds: Sequence[tuple[IntArray, IntArray]],
    held_rows: IntArray,
    held_tfidf: FloatArray,
    seed: int,
    model_id: str,
    sample_weight: FloatArray | None = None,
) -> tuple[EmbeddingHead | None, dict[str, object]]:
    """Choose w on the held-out rows of `folds` (whose TF-IDF probabilities are `held_tfidf`,
    in the order of `held_rows`), then fit the head on every row. None when w = 0."""
    held_embedding = np.empty((0, n_labels))
    parts = []
    for fit_rows, held_out in folds:
        coef, intercept = fit_logistic(
            embeddings[fit_rows],
            y[fit_rows],
            n_labels,
            seed=seed,
            sample_weight=None if sample_weight is None else sample_weight[fit_rows],
        )
        fold_head = EmbeddingHead(coef=coef, intercept=intercept, weight=1.0, model_id=model_id)
        parts.append((held_out, fold_head.probabilities(embeddings[held_out])))
    if parts:
        by_row = {
            int(r): p for held_out, probs in parts for r, p in zip(held_out, probs, strict=True)
        }
        held_embedding = np.array([by_row[int(r)] for r in held_rows]).reshape(-1, n_labels)
    weight, accuracy_of = choose_weight(
        held_tfidf,
        held_embedding,
        y[held_rows],
        weights=None if sample_weight is None else sample_weight[held_rows],
    )
    report: dict[str, object] = {
        "embedding_weight": weight,
        "embedding_model": model_id,
        "embedding_weight_accuracy": accuracy_of,
        "embedding_weight_rows": len(held_rows),
    }
    if weight == 0.0:
        return None, report
    coef, intercept = fit_logistic(embeddings, y, n_labels, seed=seed, sample_weight=sample_weight)
    return EmbeddingHead(coef=coef, intercept=intercept, weight=weight, model_id=model_id), report

"""The local model's linear SVM: calibration folds, the fits, their margins, the temperature
that turns margins into probabilities, and the sparse weights a model keeps (the classifier,
classifier.py, puts them together)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from apps.orchestrator.local_model.features import FloatArray, IntArray

_SVM_C = 0.5
_SVM_MAX_ITER = 5000
_FOLDS = 3
_CALIBRATION_ROWS = 2000
_MAX_WEIGHTS = 1_500_000


def calibration_folds(y: IntArray, n_labels: int, seed: int) -> list[tuple[IntArray, IntArray]]:
    """Stratified folds (fit rows, held-out rows), as many as needed for enough held-out rows."""
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=np.int64)
    for label in range(n_labels):
        members = np.flatnonzero(y == label)
        rng.shuffle(members)
        fold_of[members] = (np.arange(len(members)) + rng.integers(_FOLDS)) % _FOLDS
    folds: list[tuple[IntArray, IntArray]] = []
    held_out_rows = 0
    for fold in range(_FOLDS):
        fit_rows = np.flatnonzero(fold_of != fold)
        held_out = np.flatnonzero(fold_of == fold)
        if len(np.unique(y[fit_rows])) < 2 or not np.isin(y[held_out], y[fit_rows]).any():
            continue
        folds.append((fit_rows, held_out))
        held_out_rows += len(held_out)
        if held_out_rows >= _CALIBRATION_ROWS:
            break
    return folds


def fit_svm(matrix: Any, y: IntArray, seed: int, *, sample_weight: FloatArray | None = None) -> Any:
    # scikit-learn is imported where a model is fitted (about a second): a process that only
    # routes with a stored model never needs it.
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    model = LinearSVC(C=_SVM_C, max_iter=_SVM_MAX_ITER, random_state=seed)
    with warnings.catch_warnings():
        # Rare, tiny or separable label sets can stop short of the tolerance; the fit is still
        # usable and calibration measures how good it is.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(matrix, y, sample_weight=sample_weight)
    return model


def svm_margins(model: Any, matrix: Any, n_labels: int) -> FloatArray:
    """Margins for every label (-inf for labels the model never saw), one row per text."""
    raw = model.decision_function(matrix)
    if raw.ndim == 1:
        raw = np.column_stack([-raw / 2, raw / 2])
    margins = np.full((matrix.shape[0], n_labels), -np.inf)
    margins[:, model.classes_] = raw
    return margins


def fit_temperature(
    margins: FloatArray, y: IntArray, *, weights: FloatArray | None = None
) -> float:
    """The scale `a` for softmax(a * margins) with the least smoothed log loss on held-out rows
    (weighted by `weights` when given).

    The targets are smoothed by 1 / (rows + 2), so a handful of rows that all happen to be right
    cannot push the probabilities to 1; with no rows at all the scale stays 1.
    """
    from scipy.optimize import minimize_scalar

    if len(y) == 0:
        return 1.0
    smoothing = 1.0 / (len(y) + 2)
    finite = np.isfinite(margins)
    true_margin = margins[np.arange(len(y)), y]

    def loss(log_scale: float) -> float:
        scaled = np.where(finite, margins * math.exp(log_scale), -np.inf)
        top = scaled.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(scaled - top).sum(axis=1))
        true_nll = log_norm - true_margin * math.exp(log_scale)
        mean_nll = log_norm - np.where(finite, scaled, 0.0).sum(axis=1) / finite.sum(axis=1)
        row_loss = (1 - smoothing) * true_nll + smoothing * mean_nll
        if weights is None:
            return float(row_loss.mean())
        return float(np.average(row_loss, weights=weights))

    result = minimize_scalar(loss, bounds=(-4.0, 6.0), method="bounded")
    return math.exp(float(result.x))


def sparse_weights(
    model: Any, n_labels: int
) -> tuple[IntArray, NDArray[np.int32], NDArray[np.float32], FloatArray]:
    """The SVM's weights feature-major and sparse, keeping the largest when there are too many."""
    coef = np.asarray(model.coef_, dtype=np.float64)
    intercept = np.asarray(model.intercept_, dtype=np.float64)
    if n_labels == 2:
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    nonzero = np.count_nonzero(coef)
    if nonzero > _MAX_WEIGHTS:
        magnitude = np.abs(coef)
        cutoff = np.partition(magnitude.ravel(), -_MAX_WEIGHTS)[-_MAX_WEIGHTS]
        coef[magnitude < cutoff] = 0.0
    weights = sparse.csr_matrix(coef.T.astype(np.float32))
    return (
        weights.indptr.astype(np.int64),
        weights.indices.astype(np.int32),
        weights.data.astype(np.float32),
        intercept,
    )

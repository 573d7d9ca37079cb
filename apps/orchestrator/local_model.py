"""The local-model routing tier: a trained text classifier from a customer message to a pool.

Pure Python + scikit-learn (no Django), so it trains and runs the same in a management command,
a Celery task or a benchmark. A message is mapped to a pool slug, or to `OTHER` when no pool
fits; the pipeline accepts the label only when its calibrated probability clears the version's
threshold (see `threshold_for_precision`, and `threshold_for_misroute_rate`, which retraining
from people's corrections uses: apps/review/learning.py).

Model. The text (first 1,000 characters, NFKC, lower case, runs of 4+ digits such as order
numbers folded to "0000") feeds four TF-IDF blocks (sublinear tf, smoothed idf, each block
L2-normalised):

- words: light-stemmed word unigrams and bigrams;
- pairs: unordered pairs of distinct words in the message (the first 24 distinct words), min df 2;
- word characters: character 1-5-grams inside each space-padded word, min df 2;
- characters: character 2-6-grams across word boundaries, min df 2;

into one linear SVM (LinearSVC, one-vs-rest, squared hinge, C=0.5). Its margins become
probabilities by temperature scaling, softmax(a * margins), the scalar `a` fitted by minimising
log loss on out-of-fold margins: a stratified 3-fold split, used until 2,000 held-out rows are
scored. Held-out rows whose class the fold model never saw are left out, so classes with one or
two examples cannot break it; the targets are smoothed by 1 / (rows + 2), so a few lucky rows
cannot make it certain; with no usable row `a` stays 1.0, which gives soft probabilities and so
sends doubtful messages to review. Weights are stored feature-major and sparse, at most 1.5
million of them (the largest). `to_bytes` writes an .npz archive (arrays + JSON, no pickle), so
loading never runs code, and equal models give equal bytes.

Measured on CLINC150 (150 intents; train 15,000 / val 3,000 / test 4,500; in-scope accuracy
val / test, %) on this 2-core machine:

- word 1-2-grams + LinearSVC(C=1): 90.8 / 91.1; char_wb 2-5-grams alone: 91.8 / 91.6;
- word 1-2 + char_wb 2-5 union, LinearSVC C=0.5 / 1 / 2 / 4: 92.8-93.3 / 92.3-92.8; with word
  1-3-grams, char 2-6-grams, block weights or min df 2: within 0.3 of that;
- on that union: Crammer-Singer SVM 93.5 / 92.9 (3x slower to fit), SGD hinge 92.7 / 92.3, SGD
  modified Huber 91.0 / 90.9, ridge 88.5 / 88.7; logistic regression on 150 classes and 50k+
  features fitted far slower than the SVM, and the given TF-IDF + logistic regression baseline
  is 92.1 on test;
- stemmed words + word pairs + both character blocks (this model): 93.9 / 93.5 at C=0.5,
  93.9 / 93.4 at C=1; pairs only within a 3- or 5-word window lost 0.4-0.6 on val; keeping the
  largest 1.5 million of 6 million weights costs 0.05 (18.5 MB -> 6.2 MB serialised);
- calibration: ECE 0.03 on in-scope test messages (mean confidence 0.94 at 93.5% accuracy).

sklearn's TfidfVectorizer takes ~0.4 ms per block for one message, so `predict` does not use
it: it counts the n-grams itself and takes the weights of frequent features from a small dense
block and the rest from the sparse rows: p50 0.26 ms, p95 0.5 ms for 150 classes (2.5 ms for a
1,000-character message). Training on CLINC150 takes ~40 s, one fit after another (liblinear's
random generator is process-global, so parallel fits would not be reproducible).

Seed data (`data/seed_examples.csv`, the default pools billing / technical / refund and `other`)
is labelled by these boundary rules:

- refund: the customer wants money back or a purchase undone: a refund, a return, a reversed or
  disputed charge, a cancelled order (cancelling an order means getting its money back), the
  status or the rules of a refund. "I was charged twice, I want my money back" is refund.
- billing: understanding or changing what is or will be charged, without asking for money back:
  invoices, receipts, VAT, prices, plan changes, payment methods, declined cards, cancelling a
  subscription for the future. "Why was I charged twice?" is billing.
- technical: the product does not work or must be set up: errors, bugs, login, passwords, 2FA,
  installation, integrations, performance, outages, even on a payment page ("the Pay button
  throws an error" is technical; "my card was declined" is billing).
- other: nothing for a pool: greetings, thanks, chit-chat, jobs, press, partnerships and sales,
  praise and suggestions, newsletters, gibberish, unrelated questions.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import re
import unicodedata
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.optimize import minimize_scalar
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC
from tqdm import tqdm

OTHER = "other"

SEED_EXAMPLES_PATH = Path(__file__).resolve().parent / "data" / "seed_examples.csv"

_FORMAT = "supportdesk-local-model/1"
_MAX_CHARS = 1000
_PAIR_WORDS = 24
_SUFFIXES = ("ing", "edly", "ed", "ies", "es", "s", "ly")
_TOKEN = re.compile(r"\w+")
_LONG_NUMBER = re.compile(r"\d{4,}")
_SVM_C = 0.5
_SVM_MAX_ITER = 5000
_FOLDS = 3
_CALIBRATION_ROWS = 2000
_MAX_WEIGHTS = 1_500_000
_TOP_SCORES = 5
_FloatArray = NDArray[np.float64]
_IntArray = NDArray[np.int64]


def _stem(word: str) -> str:
    if not word.endswith(_SUFFIXES):
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _word_grams(words: list[str]) -> list[str]:
    stems = [_stem(word) for word in words]
    return stems + [f"{a} {b}" for a, b in itertools.pairwise(stems)]


def _pair_grams(words: list[str]) -> list[str]:
    distinct = sorted(list(dict.fromkeys(words))[:_PAIR_WORDS])
    return [f"{a}|{b}" for i, a in enumerate(distinct) for b in distinct[i + 1 :]]


def _word_char_grams(words: list[str]) -> list[str]:
    padded = [f" {word} " for word in words]
    return [
        word[i : i + n]
        for word in padded
        for n in range(1, min(5, len(word)) + 1)
        for i in range(len(word) - n + 1)
    ]


def _char_grams(words: list[str]) -> list[str]:
    joined = f" {' '.join(words)} "
    return [joined[i : i + n] for n in range(2, 7) for i in range(len(joined) - n + 1)]


# (extractor, minimum document frequency) per feature block, in matrix column order.
_BLOCKS: tuple[tuple[Callable[[list[str]], list[str]], int], ...] = (
    (_word_grams, 1),
    (_pair_grams, 2),
    (_word_char_grams, 2),
    (_char_grams, 2),
)


def _words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text[:_MAX_CHARS]).lower()
    return _TOKEN.findall(_LONG_NUMBER.sub("0000", text))


@dataclass(frozen=True)
class Prediction:
    """One message's label, its calibrated probability and the most likely labels."""

    label: str  # a pool slug or OTHER
    confidence: float  # calibrated probability of `label`, 0..1
    scores: dict[str, float]  # the top 5 labels -> probability, most likely first


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


class LocalClassifier:
    """A TF-IDF + linear SVM text classifier with temperature-scaled probabilities."""

    def __init__(
        self,
        *,
        labels: list[str],
        vocabularies: list[dict[str, int]],
        idf: _FloatArray,
        indptr: _IntArray,
        classes: NDArray[np.int32],
        weights: NDArray[np.float32],
        intercept: _FloatArray,
        temperature: float,
    ) -> None:
        self._labels = labels
        self._vocabularies = vocabularies
        self._idf = idf
        self._indptr = indptr
        self._classes = classes
        self._weights = weights
        self._intercept = intercept
        self._temperature = temperature
        self._weight_matrix = sparse.csr_matrix(
            (weights, classes, indptr), shape=(len(idf), len(labels))
        )
        sizes = [len(vocabulary) for vocabulary in vocabularies]
        self._block_starts = np.cumsum([0, *sizes[:-1]])
        # Features with weights for at least an eighth of the labels: a dense block for predict().
        frequent = np.flatnonzero(np.diff(indptr) * 8 >= max(len(labels), 8))
        self._dense_row = np.full(len(idf), -1, dtype=np.int64)
        self._dense_row[frequent] = np.arange(len(frequent))
        self._dense_weights = self._weight_matrix[frequent].toarray()

    @classmethod
    def train(
        cls,
        *,
        texts: Sequence[str],
        labels: Sequence[str],
        seed: int = 0,
        show_progress: bool = False,
        sample_weight: Sequence[float] | None = None,
    ) -> LocalClassifier:
        """Fit the classifier and its probability calibration on labelled texts.

        `sample_weight` (one positive number per text, default all 1) makes some examples count
        less, e.g. labels distilled from the LLM's decisions next to people's verdicts: it
        weights the SVM's loss and the calibration's log loss alike.
        """
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        row_weights: _FloatArray | None = None
        if sample_weight is not None:
            row_weights = np.asarray(sample_weight, dtype=np.float64)
            if row_weights.shape != (len(texts),):
                raise ValueError(f"{len(texts)} texts but {row_weights.size} sample weights")
            if not (np.isfinite(row_weights).all() and (row_weights > 0).all()):
                raise ValueError("sample weights must be positive and finite")
        names = sorted(set(labels))
        if len(names) < 2:
            raise ValueError("training needs at least two distinct labels")
        index = {name: i for i, name in enumerate(names)}
        y = np.array([index[label] for label in labels], dtype=np.int64)
        folds = _calibration_folds(y, len(names), seed)
        # The fits run one after another: liblinear's random generator is process-global, so
        # fits in parallel threads would not be reproducible for a seed.
        with tqdm(total=len(folds) + 3, desc="local model", disable=not show_progress) as progress:
            progress.set_postfix_str("features")
            vocabularies, idf, matrix = _fit_features(texts)
            progress.update()
            held_margins = [np.empty((0, len(names)))]
            held_labels = [np.empty(0, dtype=np.int64)]
            held_rows = [np.empty(0, dtype=np.int64)]
            for number, (fit_rows, held_out) in enumerate(folds, start=1):
                progress.set_postfix_str(f"calibration fold {number}")
                fold_model = _fit_svm(
                    matrix[fit_rows],
                    y[fit_rows],
                    seed,
                    sample_weight=None if row_weights is None else row_weights[fit_rows],
                )
                rows = held_out[np.isin(y[held_out], fold_model.classes_)]
                held_margins.append(_svm_margins(fold_model, matrix[rows], len(names)))
                held_labels.append(y[rows])
                held_rows.append(rows)
                progress.update()
            progress.set_postfix_str("fit")
            model = _fit_svm(matrix, y, seed, sample_weight=row_weights)
            progress.update()
            progress.set_postfix_str("calibration")
            temperature = _fit_temperature(
                np.concatenate(held_margins),
                np.concatenate(held_labels),
                weights=None if row_weights is None else row_weights[np.concatenate(held_rows)],
            )
            progress.update()
        indptr, classes, weights, intercept = _sparse_weights(model, len(names))
        return cls(
            labels=names,
            vocabularies=vocabularies,
            idf=idf,
            indptr=indptr,
            classes=classes,
            weights=weights,
            intercept=intercept,
            temperature=temperature,
        )

    @property
    def labels(self) -> list[str]:
        """The labels this classifier can predict, sorted."""
        return list(self._labels)

    def predict(self, text: str) -> Prediction:
        """Label one message."""
        ids, values = self._vector(text)
        # Frequent features (most of a message's) sit in a dense block: one small matrix
        # product; the rest are gathered from the sparse rows.
        rows = self._dense_row[ids]
        dense = rows >= 0
        margins = (
            values[dense].astype(np.float32) @ np.take(self._dense_weights, rows[dense], axis=0)
        ).astype(np.float64)
        sparse_ids, sparse_values = ids[~dense], values[~dense]
        starts = self._indptr[sparse_ids]
        lengths = self._indptr[sparse_ids + 1] - starts
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(
            lengths.sum()
        )
        margins += np.bincount(
            self._classes[offsets],
            weights=self._weights[offsets] * np.repeat(sparse_values, lengths),
            minlength=len(self._labels),
        )
        return self._prediction(margins + self._intercept)

    def predict_many(self, texts: Sequence[str]) -> list[Prediction]:
        """Label many messages at once."""
        if not texts:
            return []
        margins = (self._matrix(texts) @ self._weight_matrix).toarray() + self._intercept
        return [self._prediction(row) for row in margins]

    def to_bytes(self) -> bytes:
        """Serialise the model as an .npz archive (arrays and JSON only, no pickle)."""
        ordered: list[list[str]] = []
        for vocabulary in self._vocabularies:
            ordered.append(sorted(vocabulary, key=vocabulary.__getitem__))
        meta = {
            "format": _FORMAT,
            "labels": self._labels,
            "temperature": self._temperature,
            "vocabularies": ordered,
        }
        arrays: dict[str, NDArray[Any]] = {
            "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            "idf": self._idf,
            "indptr": self._indptr,
            "classes": self._classes,
            "weights": self._weights,
            "intercept": self._intercept,
        }
        # np.savez_compressed's layout, with fixed timestamps so equal models give equal bytes.
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, array in arrays.items():
                member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                member.compress_type = zipfile.ZIP_DEFLATED
                with archive.open(member, "w", force_zip64=True) as handle:
                    np.lib.format.write_array(handle, array, allow_pickle=False)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> LocalClassifier:
        """Load a model written by `to_bytes`."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
            meta = json.loads(arrays.pop("meta").tobytes())
            if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
                raise ValueError("unknown format")
            vocabularies: list[dict[str, int]] = []
            offset = 0
            for grams in meta["vocabularies"]:
                vocabularies.append({gram: offset + i for i, gram in enumerate(grams)})
                offset += len(grams)
            return cls(
                labels=list(meta["labels"]),
                vocabularies=vocabularies,
                idf=arrays["idf"],
                indptr=arrays["indptr"],
                classes=arrays["classes"],
                weights=arrays["weights"],
                intercept=arrays["intercept"],
                temperature=float(meta["temperature"]),
            )
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
            raise ValueError("not a serialised local model of a known format") from error

    def _vector(self, text: str) -> tuple[_IntArray, _FloatArray]:
        """The message's TF-IDF features: sorted feature ids and their values."""
        words = _words(text)
        found: list[int] = []
        for (extract, _), vocabulary in zip(_BLOCKS, self._vocabularies, strict=True):
            found.extend(map(vocabulary.get, extract(words), itertools.repeat(-1)))
        all_ids = np.array(found, dtype=np.int64)
        ids, counts = np.unique(all_ids[all_ids >= 0], return_counts=True)
        values = (1.0 + np.log(counts)) * self._idf[ids]
        block = np.searchsorted(self._block_starts, ids, side="right") - 1
        norms = np.sqrt(np.bincount(block, weights=values * values, minlength=len(_BLOCKS)))
        return ids, values / norms[block]

    def _matrix(self, texts: Sequence[str]) -> Any:
        vectors = [self._vector(text) for text in texts]
        indptr = np.zeros(len(vectors) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(ids) for ids, _ in vectors])
        return sparse.csr_matrix(
            (
                np.concatenate([values for _, values in vectors]),
                np.concatenate([ids for ids, _ in vectors]),
                indptr,
            ),
            shape=(len(vectors), len(self._idf)),
        )

    def _prediction(self, margins: _FloatArray) -> Prediction:
        scaled = margins * self._temperature
        probabilities = np.exp(scaled - scaled.max())
        probabilities /= probabilities.sum()
        if len(probabilities) > _TOP_SCORES:
            top = np.argpartition(-probabilities, _TOP_SCORES)[:_TOP_SCORES]
        else:
            top = np.arange(len(probabilities))
        top = top[np.argsort(-probabilities[top], kind="stable")]
        scores = {self._labels[i]: float(probabilities[i]) for i in top}
        best = int(top[0])
        return Prediction(
            label=self._labels[best], confidence=float(probabilities[best]), scores=scores
        )


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
    return Evaluation(
        accuracy=sum(correct) / n if n else 0.0,
        macro_f1=sum(figures["f1"] for figures in per_label.values()) / len(names)
        if names
        else 0.0,
        per_label=per_label,
        confusion=confusion,
        ece=_expected_calibration_error([p.confidence for p in predictions], correct),
        n=n,
        brier=sum((p.confidence - hit) ** 2 for p, hit in zip(predictions, correct, strict=True))
        / n
        if n
        else 0.0,
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
    """Lowest confidence threshold whose accepted set (confidence >= it) reaches the precision,
    among thresholds that accept at least `min_accepted` labelled messages.

    Returns math.inf (accept nothing) when no such threshold reaches it.
    """
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels")
    if not 0.0 < target_precision <= 1.0:
        raise ValueError("target_precision must be in (0, 1]")
    ranked = sorted(
        ((p.confidence, p.label == truth) for p, truth in zip(predictions, labels, strict=True)),
        key=lambda pair: -pair[0],
    )
    best = math.inf
    correct = 0
    for i, (confidence, is_correct) in enumerate(ranked):
        accepted = i + 1
        correct += is_correct
        # A threshold accepts every prediction with the same confidence, so only the last of a
        # run of equal confidences is a real choice.
        last_of_tie = i + 1 == len(ranked) or ranked[i + 1][0] < confidence
        if last_of_tie and accepted >= min_accepted and correct >= target_precision * accepted:
            best = confidence
    return best


def misroute_rate(
    predictions: Sequence[Prediction], labels: Sequence[str], *, threshold: float
) -> tuple[float, float]:
    """(misroute rate, auto-routed share) of a threshold on labelled predictions.

    Auto-routed: a pool label (not OTHER) with confidence >= threshold; misrouted: auto-routed
    to a label that is not the truth. The rate is 0.0 when nothing is auto-routed.
    """
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels")
    routed = [
        p.label != truth
        for p, truth in zip(predictions, labels, strict=True)
        if p.label != OTHER and p.confidence >= threshold
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
    """Lowest confidence threshold at which the auto-routed messages' misroute rate is within
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
            (p.confidence, p.label != truth)
            for p, truth in zip(predictions, labels, strict=True)
            if p.label != OTHER
        ),
        key=lambda pair: -pair[0],
    )
    best = math.inf
    wrong = 0
    for i, (confidence, is_wrong) in enumerate(ranked):
        wrong += is_wrong
        # As in threshold_for_precision: a threshold accepts a whole run of equal confidences.
        last_of_tie = i + 1 == len(ranked) or ranked[i + 1][0] < confidence
        if last_of_tie and i + 1 >= min_routed and wrong / (i + 1) <= target_rate:
            best = confidence
    return best


def seed_examples() -> list[tuple[str, str]]:
    """The shipped seed examples (text, pool) for the default pools and `other`."""
    with SEED_EXAMPLES_PATH.open(newline="", encoding="utf-8") as handle:
        return [(row["text"], row["pool"]) for row in csv.DictReader(handle)]


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


def _fit_features(texts: Sequence[str]) -> tuple[list[dict[str, int]], _FloatArray, Any]:
    """Build the vocabularies and idf from the texts, and their TF-IDF matrix."""
    n = len(texts)
    provisional: list[dict[str, int]] = [{} for _ in _BLOCKS]
    rows: list[list[tuple[_IntArray, _FloatArray]]] = [[] for _ in _BLOCKS]
    for text in texts:
        words = _words(text)
        for (extract, _), vocabulary, block_rows in zip(_BLOCKS, provisional, rows, strict=True):
            counts = Counter(extract(words))
            ids = np.fromiter(
                (vocabulary.setdefault(gram, len(vocabulary)) for gram in counts),
                dtype=np.int64,
                count=len(counts),
            )
            block_rows.append((ids, np.fromiter(counts.values(), np.float64, len(counts))))
    vocabularies: list[dict[str, int]] = []
    idfs: list[_FloatArray] = []
    blocks: list[Any] = []
    offset = 0
    for (_, min_df), vocabulary, block_rows in zip(_BLOCKS, provisional, rows, strict=True):
        ids = np.concatenate([ids for ids, _ in block_rows])
        tf = 1.0 + np.log(np.concatenate([counts for _, counts in block_rows]))
        df = np.bincount(ids, minlength=len(vocabulary))
        keep = df >= min_df
        final = np.where(keep, np.cumsum(keep) - 1, -1)
        vocabularies.append(
            {gram: offset + int(final[i]) for gram, i in vocabulary.items() if keep[i]}
        )
        idf = np.log((1.0 + n) / (1.0 + df[keep])) + 1.0
        idfs.append(idf)
        columns = final[ids]
        kept = columns >= 0
        row_of = np.repeat(np.arange(n), [len(row_ids) for row_ids, _ in block_rows])
        indptr = np.zeros(n + 1, dtype=np.int64)
        indptr[1:] = np.cumsum(np.bincount(row_of[kept], minlength=n))
        block = sparse.csr_matrix(
            (tf[kept] * idf[columns[kept]], columns[kept], indptr), shape=(n, len(idf))
        )
        norms = np.sqrt(np.asarray(block.multiply(block).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        blocks.append(sparse.diags(1.0 / norms) @ block)
        offset += len(idf)
    matrix = sparse.hstack(blocks, format="csr")
    return vocabularies, np.concatenate(idfs), matrix


def _calibration_folds(y: _IntArray, n_labels: int, seed: int) -> list[tuple[_IntArray, _IntArray]]:
    """Stratified folds (fit rows, held-out rows), as many as needed for enough held-out rows."""
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=np.int64)
    for label in range(n_labels):
        members = np.flatnonzero(y == label)
        rng.shuffle(members)
        fold_of[members] = (np.arange(len(members)) + rng.integers(_FOLDS)) % _FOLDS
    folds: list[tuple[_IntArray, _IntArray]] = []
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


def _fit_svm(
    matrix: Any, y: _IntArray, seed: int, *, sample_weight: _FloatArray | None = None
) -> Any:
    model = LinearSVC(C=_SVM_C, max_iter=_SVM_MAX_ITER, random_state=seed)
    with warnings.catch_warnings():
        # Rare, tiny or separable label sets can stop short of the tolerance; the fit is still
        # usable and calibration measures how good it is.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(matrix, y, sample_weight=sample_weight)
    return model


def _svm_margins(model: Any, matrix: Any, n_labels: int) -> _FloatArray:
    """Margins for every label (-inf for labels the model never saw), one row per text."""
    raw = model.decision_function(matrix)
    if raw.ndim == 1:
        raw = np.column_stack([-raw / 2, raw / 2])
    margins = np.full((matrix.shape[0], n_labels), -np.inf)
    margins[:, model.classes_] = raw
    return margins


def _fit_temperature(
    margins: _FloatArray, y: _IntArray, *, weights: _FloatArray | None = None
) -> float:
    """The scale `a` for softmax(a * margins) with the least smoothed log loss on held-out rows
    (weighted by `weights` when given).

    The targets are smoothed by 1 / (rows + 2), so a handful of rows that all happen to be right
    cannot push the probabilities to 1; with no rows at all the scale stays 1.
    """
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


def _sparse_weights(
    model: Any, n_labels: int
) -> tuple[_IntArray, NDArray[np.int32], NDArray[np.float32], _FloatArray]:
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

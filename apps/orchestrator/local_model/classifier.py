"""The local model's classifier: a linear SVM over the feature blocks, temperature-scaled
probabilities, and its serialised form (see the package docstring)."""

from __future__ import annotations

import io
import itertools
import json
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from tqdm import tqdm

from apps.orchestrator.local_model.embedding_head import EmbeddingHead, fit_head
from apps.orchestrator.local_model.embeddings import TextEmbedder
from apps.orchestrator.local_model.features import (
    BLOCKS,
    FloatArray,
    IntArray,
    fit_features,
    text_words,
)
from apps.orchestrator.local_model.neighbours import Neighbours
from apps.orchestrator.local_model.prediction import Prediction
from apps.orchestrator.local_model.svm import (
    calibration_folds,
    fit_svm,
    fit_temperature,
    sparse_weights,
    svm_margins,
)

_FORMAT = "supportdesk-local-model/1"
# A model of intents grouped into pools: meta adds `groups`, each label's pool. A reader of
# format 1 would take the intents for pools, so it must refuse these.
_FORMAT_GROUPED = "supportdesk-local-model/2"
_TOP_SCORES = 5


class LocalClassifier:
    """A TF-IDF + linear SVM text classifier with temperature-scaled probabilities.

    With `groups` (each label's pool) it classifies intents and predicts pools: a pool's
    probability is the sum of its intents' probabilities.

    A model trained now routes on its margin (`routes_on_margin`): the top label's probability
    less the runner-up's ranks its right answers above its wrong ones better than the
    probability alone, where two pools share the probability (CLINC150's learning curve,
    docs/benchmarks.md). Its thresholds are chosen on the margin and compared with it. A model
    stored before keeps routing on its confidence, which its thresholds were chosen on.
    """

    def __init__(
        self,
        *,
        labels: list[str],
        vocabularies: list[dict[str, int]],
        idf: FloatArray,
        indptr: IntArray,
        classes: NDArray[np.int32],
        weights: NDArray[np.float32],
        intercept: FloatArray,
        temperature: float,
        groups: Sequence[str] | None = None,
        embedding_head: EmbeddingHead | None = None,
        embedder: TextEmbedder | None = None,
        routes_on_margin: bool = False,
        neighbours: Neighbours | None = None,
    ) -> None:
        self._labels = labels
        self.routes_on_margin = routes_on_margin
        # The embedding head and the neighbours are kept (and serialised) whatever the embedder;
        # each is used only with an embedder of the same embeddings (see embedding_head).
        self._head = embedding_head
        self._neighbours = neighbours

        def fits(part: EmbeddingHead | Neighbours | None) -> bool:
            return part is not None and embedder is not None and embedder.model_id == part.model_id

        self._embedder = embedder if fits(embedding_head) or fits(neighbours) else None
        self._mixes = fits(embedding_head)
        self._gaps = fits(neighbours) and routes_on_margin
        self.embedding_report: dict[str, object] = {}
        # A model of intents: `_groups` are the pools, `_group_of[i]` the pool of label i.
        self._groups: list[str] | None = None
        self._group_of: IntArray | None = None
        if groups is not None:
            if len(groups) != len(labels):
                raise ValueError(f"{len(labels)} labels but {len(groups)} groups")
            self._groups = sorted(set(groups))
            position = {group: i for i, group in enumerate(self._groups)}
            self._group_of = np.array([position[group] for group in groups], dtype=np.int64)
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
        groups: Mapping[str, str] | None = None,
        embedder: TextEmbedder | None = None,
    ) -> LocalClassifier:
        """Fit the classifier and its probability calibration on labelled texts.

        `sample_weight` (one positive number per text, default all 1) makes some examples count
        less, e.g. labels distilled from the LLM's decisions next to people's verdicts: it
        weights the SVM's loss and the calibration's log loss alike.

        `groups` (label -> pool, for every label) makes the labels intents: the SVM and its
        calibration learn the intents, and `predict` routes to the pool whose intents'
        probabilities sum highest.

        With an `embedder`, a logistic regression on sentence embeddings is fitted beside the SVM
        and averaged with it by a weight chosen on the calibration's held-out rows
        (embedding_head); `embedding_report` then says which weight and why.
        """
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        if groups is not None:
            ungrouped = sorted(set(labels) - set(groups))
            if ungrouped:
                raise ValueError(f"labels without a group: {', '.join(ungrouped[:10])}")
            if len({groups[label] for label in labels}) < 2:
                raise ValueError("training on intents needs intents of at least two groups")
        row_weights: FloatArray | None = None
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
        folds = calibration_folds(y, len(names), seed)
        # The fits run one after another: liblinear's random generator is process-global, so
        # fits in parallel threads would not be reproducible for a seed.
        steps = len(folds) + 3 + (embedder is not None)
        with tqdm(total=steps, desc="local model", disable=not show_progress) as progress:
            progress.set_postfix_str("features")
            vocabularies, idf, matrix = fit_features(texts)
            progress.update()
            held_margins = [np.empty((0, len(names)))]
            held_labels = [np.empty(0, dtype=np.int64)]
            held_rows = [np.empty(0, dtype=np.int64)]
            for number, (fit_rows, held_out) in enumerate(folds, start=1):
                progress.set_postfix_str(f"calibration fold {number}")
                fold_model = fit_svm(
                    matrix[fit_rows],
                    y[fit_rows],
                    seed,
                    sample_weight=None if row_weights is None else row_weights[fit_rows],
                )
                rows = held_out[np.isin(y[held_out], fold_model.classes_)]
                held_margins.append(svm_margins(fold_model, matrix[rows], len(names)))
                held_labels.append(y[rows])
                held_rows.append(rows)
                progress.update()
            progress.set_postfix_str("fit")
            model = fit_svm(matrix, y, seed, sample_weight=row_weights)
            progress.update()
            progress.set_postfix_str("calibration")
            temperature = fit_temperature(
                np.concatenate(held_margins),
                np.concatenate(held_labels),
                weights=None if row_weights is None else row_weights[np.concatenate(held_rows)],
            )
            progress.update()
            head: EmbeddingHead | None = None
            neighbours: Neighbours | None = None
            report: dict[str, object] = {"embedding_weight": 0.0}
            if embedder is not None:
                progress.set_postfix_str("embeddings")
                all_held = np.concatenate(held_rows)
                embedded = embedder.embed(texts)
                neighbours = Neighbours.build(embedded, y, embedder.model_id)
                head, report = fit_head(
                    embedded,
                    y,
                    len(names),
                    folds=folds,
                    held_rows=all_held,
                    held_tfidf=_softmax_rows(np.concatenate(held_margins) * temperature),
                    seed=seed,
                    model_id=embedder.model_id,
                    sample_weight=row_weights,
                )
                progress.update()
        indptr, classes, weights, intercept = sparse_weights(model, len(names))
        classifier = cls(
            labels=names,
            vocabularies=vocabularies,
            idf=idf,
            indptr=indptr,
            classes=classes,
            weights=weights,
            intercept=intercept,
            temperature=temperature,
            groups=None if groups is None else [groups[name] for name in names],
            embedding_head=head,
            embedder=embedder,
            routes_on_margin=True,
            neighbours=neighbours,
        )
        classifier.embedding_report = report
        return classifier

    @property
    def embedding_weight(self) -> float:
        """w in p = (1 - w) * p_tfidf + w * p_embeddings (0: TF-IDF alone)."""
        return 0.0 if self._head is None else self._head.weight

    @property
    def uses_embeddings(self) -> bool:
        """True when predictions use embeddings: a head mixed in, or the neighbour gap."""
        return self._embedder is not None

    @property
    def labels(self) -> list[str]:
        """The labels this classifier can predict (a model of intents: the pools), sorted."""
        return list(self._labels if self._groups is None else self._groups)

    @property
    def intents(self) -> dict[str, str]:
        """A model of intents: each intent's pool; {} for a model of pools."""
        if self._groups is None or self._group_of is None:
            return {}
        return {
            label: self._groups[g] for label, g in zip(self._labels, self._group_of, strict=True)
        }

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
        embedding = None if self._embedder is None else self._embedder.embed([text])[0]
        return self._prediction(margins + self._intercept, embedding)

    def predict_many(self, texts: Sequence[str]) -> list[Prediction]:
        """Label many messages at once."""
        if not texts:
            return []
        margins = (self._matrix(texts) @ self._weight_matrix).toarray() + self._intercept
        if self._embedder is None:
            return [self._prediction(row) for row in margins]
        embeddings = self._embedder.embed(texts)
        return [
            self._prediction(row, embedding)
            for row, embedding in zip(margins, embeddings, strict=True)
        ]

    def to_bytes(self) -> bytes:
        """Serialise the model as an .npz archive (arrays and JSON only, no pickle)."""
        ordered: list[list[str]] = []
        for vocabulary in self._vocabularies:
            ordered.append(sorted(vocabulary, key=vocabulary.__getitem__))
        meta: dict[str, Any] = {
            "format": _FORMAT,
            "labels": self._labels,
            "temperature": self._temperature,
            "vocabularies": ordered,
        }
        if self._groups is not None:
            # A model of pools keeps format 1, byte for byte as before.
            meta["format"] = _FORMAT_GROUPED
            meta["groups"] = list(self.intents.values())
        arrays: dict[str, NDArray[Any]] = {
            "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            "idf": self._idf,
            "indptr": self._indptr,
            "classes": self._classes,
            "weights": self._weights,
            "intercept": self._intercept,
        }
        if self._head is not None:
            # Added after the rest: a model without a head keeps its bytes.
            meta["embedding"] = {"weight": self._head.weight, "model": self._head.model_id}
            arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
            arrays["embedding_coef"] = self._head.coef
            arrays["embedding_intercept"] = self._head.intercept
        if self.routes_on_margin:
            # Added last too: a model that routes on its confidence keeps its bytes.
            meta["routes_on"] = "margin"
            arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        if self._neighbours is not None:  # last again: a model without them keeps its bytes
            meta["neighbours"] = {"model": self._neighbours.model_id}
            arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
            arrays["neighbour_vectors"] = self._neighbours.vectors.astype(np.float16)
            arrays["neighbour_labels"] = self._neighbours.labels
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
    def from_bytes(cls, data: bytes, *, embedder: TextEmbedder | None = None) -> LocalClassifier:
        """Load a model written by `to_bytes`; with `embedder`, a model with an embedding head
        mixes it in (without, it predicts from TF-IDF alone)."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
            meta = json.loads(arrays.pop("meta").tobytes())
            if not isinstance(meta, dict) or meta.get("format") not in (_FORMAT, _FORMAT_GROUPED):
                raise ValueError("unknown format")
            groups = meta["groups"] if meta["format"] == _FORMAT_GROUPED else None
            head = None
            if "embedding" in meta:
                head = EmbeddingHead(
                    coef=arrays["embedding_coef"],
                    intercept=arrays["embedding_intercept"],
                    weight=float(meta["embedding"]["weight"]),
                    model_id=str(meta["embedding"]["model"]),
                )
            neighbours = None
            if "neighbours" in meta:
                neighbours = Neighbours(
                    vectors=arrays["neighbour_vectors"].astype(np.float32),
                    labels=arrays["neighbour_labels"],
                    model_id=str(meta["neighbours"]["model"]),
                )
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
                groups=groups,
                embedding_head=head,
                embedder=embedder,
                routes_on_margin=meta.get("routes_on") == "margin",
                neighbours=neighbours,
            )
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
            raise ValueError("not a serialised local model of a known format") from error

    def _vector(self, text: str) -> tuple[IntArray, FloatArray]:
        """The message's TF-IDF features: sorted feature ids and their values."""
        words = text_words(text)
        found: list[int] = []
        for (extract, _), vocabulary in zip(BLOCKS, self._vocabularies, strict=True):
            found.extend(map(vocabulary.get, extract(words), itertools.repeat(-1)))
        all_ids = np.array(found, dtype=np.int64)
        ids, counts = np.unique(all_ids[all_ids >= 0], return_counts=True)
        values = (1.0 + np.log(counts)) * self._idf[ids]
        block = np.searchsorted(self._block_starts, ids, side="right") - 1
        norms = np.sqrt(np.bincount(block, weights=values * values, minlength=len(BLOCKS)))
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

    def _prediction(
        self, margins: FloatArray, embedding: NDArray[np.float32] | None = None
    ) -> Prediction:
        scaled = margins * self._temperature
        probabilities = np.exp(scaled - scaled.max())
        probabilities /= probabilities.sum()
        if embedding is not None and self._mixes and self._head is not None:
            probabilities = self._head.mix(probabilities[None, :], embedding[None, :])[0]
        if self._groups is None or self._group_of is None:
            top = _top(probabilities)
            best = int(top[0])
            return Prediction(
                label=self._labels[best],
                confidence=float(probabilities[best]),
                scores={self._labels[i]: float(probabilities[i]) for i in top},
                margin=self._margin(probabilities, top),
                neighbour_gap=self._gap(embedding, np.arange(len(self._labels)) == best),
            )
        pools: FloatArray = np.bincount(
            self._group_of, weights=probabilities, minlength=len(self._groups)
        ).astype(np.float64)
        top = _top(pools)
        best = int(top[0])
        # The pool's most likely intent (not the overall top intent, which may be another pool's).
        intent = int(np.argmax(np.where(self._group_of == best, probabilities, -1.0)))
        return Prediction(
            label=self._groups[best],
            confidence=float(min(pools[best], 1.0)),
            scores={self._groups[i]: float(min(pools[i], 1.0)) for i in top},
            intent=self._labels[intent],
            intent_confidence=float(probabilities[intent]),
            margin=self._margin(pools, top),
            neighbour_gap=self._gap(embedding, self._group_of == best),
        )

    def _margin(self, probabilities: FloatArray, top: IntArray) -> float | None:
        """The top label's probability less the runner-up's (a model that routes on it)."""
        if not self.routes_on_margin:
            return None
        second = float(probabilities[top[1]]) if len(top) > 1 else 0.0
        return float(min(max(float(probabilities[top[0]]) - second, 0.0), 1.0))

    def _gap(self, embedding: NDArray[np.float32] | None, same: NDArray[np.bool_]) -> float | None:
        """The neighbour gap of the predicted label (`same`: its labels); None for a model
        without neighbours. Its thresholds were chosen on margin + gap: run without the
        embeddings they were built on, the gap counts as 0 and the score keeps that scale."""
        if self._neighbours is None or not self.routes_on_margin:
            return None
        if embedding is None or not self._gaps:
            return 0.0
        return self._neighbours.gap(embedding, same)


def _top(probabilities: FloatArray) -> IntArray:
    """Indices of the _TOP_SCORES largest probabilities, largest first (ties: lower index)."""
    if len(probabilities) > _TOP_SCORES:
        top = np.argpartition(-probabilities, _TOP_SCORES)[:_TOP_SCORES]
    else:
        top = np.arange(len(probabilities))
    return top[np.argsort(-probabilities[top], kind="stable")]


def _softmax_rows(scaled: FloatArray) -> FloatArray:
    """Row-wise softmax; -inf scores (labels a fold model never saw) get probability 0."""
    top = scaled.max(axis=1, keepdims=True)
    probabilities: FloatArray = np.exp(scaled - top)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return probabilities

"""The local model's nearest labelled texts: its training texts' sentence embeddings, kept with
the model so that a prediction can ask how much nearer the message is to a text of the
predicted label than to any text labelled otherwise.

That gap, added to the margin (`Prediction.score`), ranks the model's right answers above its
wrong ones better than the margin alone: on CLINC150's learning curve (docs/benchmarks.md),
the surest half of the tickets each retrained model scored was right 97.6% / 98.2% of the time
(seeds 0 / 4) against 96.0% / 97.3% on the margin. It needs the embeddings the model was
trained on (`model_id`): with other embeddings, or none, the model routes on its margin.

At most ROWS_PER_LABEL texts of each label are kept (the first in training order), float16 in
the artifact (768 bytes a text) and float32 in memory; a prediction is one matrix-vector product
over them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from apps.orchestrator.local_model.features import IntArray

ROWS_PER_LABEL = 200


@dataclass(frozen=True)
class Neighbours:
    """Unit-length embeddings of the training texts and each one's label (an index)."""

    vectors: NDArray[np.float32]  # texts x embedding dimension, each row of length 1
    labels: NDArray[np.int32]  # texts: the label index of each
    model_id: str  # the embeddings they are

    @classmethod
    def build(cls, embeddings: NDArray[np.float32], y: IntArray, model_id: str) -> Neighbours:
        kept = np.zeros(len(y), dtype=bool)
        for label in np.unique(y):
            kept[np.flatnonzero(y == label)[:ROWS_PER_LABEL]] = True
        rows = embeddings[kept].astype(np.float32)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        unit = rows / np.where(norms > 0, norms, 1.0)
        # Through float16, as stored: a model predicts the same before and after a round trip.
        vectors = unit.astype(np.float16).astype(np.float32)
        return cls(vectors, np.asarray(y, dtype=np.int32)[kept], model_id)

    def gap(self, embedding: NDArray[np.float32], same: NDArray[np.bool_]) -> float:
        """The similarity of the nearest text whose label is in `same` (a mask over label
        indices) less that of the nearest other text, -2..2 (-1 stands for a side with none)."""
        similarities = self.vectors @ embedding.astype(np.float32)
        inside = same[self.labels]
        nearest = float(similarities[inside].max()) if inside.any() else -1.0
        other = float(similarities[~inside].max()) if (~inside).any() else -1.0
        return min(max(nearest - other, -2.0), 2.0)

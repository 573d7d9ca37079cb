"""What the local model says of one message (`Prediction`), and the score its thresholds hold
against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Prediction:
    """One message's label, its calibrated probability and the most likely labels.

    A model of intents (trained with `groups`) gives the pool whose intents' probabilities sum
    highest, that sum, and the pool's most likely intent.
    """

    label: str  # a pool slug or OTHER
    confidence: float  # calibrated probability of `label`, 0..1
    scores: dict[str, float]  # the top 5 labels -> probability, most likely first
    intent: str | None = None  # a model of intents: the most likely intent of `label`
    intent_confidence: float | None = None  # its probability, 0..1
    # A model that routes on its margin (LocalClassifier.routes_on_margin): `label`'s probability
    # less the runner-up's, 0..1. None for a model that routes on `confidence`.
    margin: float | None = None
    # A model that keeps its training texts' embeddings (neighbours.py): the similarity of the
    # nearest text labelled `label` less that of the nearest labelled otherwise, -2..2.
    neighbour_gap: float | None = None

    @property
    def score(self) -> float:
        """What the local tier's thresholds hold against, 0..1: (margin + neighbour gap + 2) / 5
        for a model that keeps its neighbours, the margin for one that routes on it, else the
        confidence. (Never 1 with neighbours: that needs a gap of 2.)"""
        if self.margin is None:
            return self.confidence
        if self.neighbour_gap is None:
            return self.margin
        return (self.margin + self.neighbour_gap + 2.0) / 5.0

    def output(self) -> dict[str, Any]:
        """What a routing decision keeps of it (its raw output): the label and scores, the
        intent where the model has intents, the margin and neighbour gap where it has them."""
        output: dict[str, Any] = {"label": self.label, "scores": self.scores}
        if self.intent is not None:
            output["intent"] = self.intent
            output["intent_confidence"] = self.intent_confidence
        if self.margin is not None:
            output["margin"] = self.margin
        if self.neighbour_gap is not None:
            output["neighbour_gap"] = self.neighbour_gap
            output["score"] = self.score
        return output

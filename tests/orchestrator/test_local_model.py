"""The local-model routing tier: training, routing, probabilities, serialisation and metrics."""

import io
import json
import math
import random
import time
import zipfile
from collections import Counter

import numpy as np
import pytest

from apps.orchestrator.local_model import (
    OTHER,
    LocalClassifier,
    Prediction,
    evaluate,
    min_support,
    pool_thresholds,
    seed_examples,
    threshold_for_precision,
)
from apps.orchestrator.local_model.features import BLOCKS
from apps.orchestrator.local_model.thresholds import _expected_calibration_error

# Clearly worded messages that are not in the seed CSV; each must route to its pool.
HELD_OUT = [
    ("Could you email me the invoice for my January subscription?", "billing"),
    ("I want to switch my plan from monthly to yearly billing", "billing"),
    ("How do I change the credit card you charge every month?", "billing"),
    ("Your invoice is missing our VAT number", "billing"),
    ("The app shows an error and crashes when I open a report", "technical"),
    ("I forgot my password and can't log in", "technical"),
    ("The installation fails on my Mac with an error", "technical"),
    ("The API has been returning 500 errors all morning", "technical"),
    ("I want a refund for my order, it arrived damaged", "refund"),
    ("When will I get my money back for the cancelled order?", "refund"),
    ("Please refund the duplicate payment", "refund"),
    ("How do I return the item and get a refund?", "refund"),
    ("hello!", OTHER),
    ("Do you have any job openings for designers?", OTHER),
    ("What's the weather going to be like this weekend?", OTHER),
    ("I am a reporter and would like to interview your founder", OTHER),
]


@pytest.fixture(scope="module")
def seed_classifier() -> LocalClassifier:
    examples = seed_examples()
    return LocalClassifier.train(
        texts=[text for text, _ in examples], labels=[pool for _, pool in examples]
    )


def synthetic_examples(n_classes: int, per_class: int, seed: int) -> list[tuple[str, str]]:
    """Texts of shared filler words plus two of three words that belong to one class."""
    rng = random.Random(seed)
    filler = ["please", "help", "with", "my", "the", "a", "need", "about", "question", "today"]
    examples = []
    for c in range(n_classes):
        own = [f"w{c}x{k}" for k in range(3)]
        for _ in range(per_class):
            words = rng.sample(filler, 4) + rng.sample(own, 2)
            rng.shuffle(words)
            examples.append((" ".join(words), f"intent-{c:03d}"))
    return examples


def test_seed_examples_have_seventy_or_more_per_default_pool():
    counts = Counter(pool for _, pool in seed_examples())
    assert set(counts) == {"billing", "technical", "refund", OTHER}
    assert min(counts.values()) >= 70


def test_clear_held_out_messages_route_to_their_pool(seed_classifier):
    seed_texts = {text.lower() for text, _ in seed_examples()}
    assert not seed_texts & {text.lower() for text, _ in HELD_OUT}
    routed = {text: seed_classifier.predict(text).label for text, _ in HELD_OUT}
    wrong = {text: routed[text] for text, pool in HELD_OUT if routed[text] != pool}
    assert wrong == {}


def test_the_charged_twice_boundary_follows_the_seed_rules(seed_classifier):
    assert seed_classifier.predict("Why did you charge me twice this month?").label == "billing"
    assert (
        seed_classifier.predict("You charged me twice, please give me my money back").label
        == "refund"
    )


def test_probabilities_lie_in_unit_interval_and_sum_to_one(seed_classifier):
    for text, _ in HELD_OUT:
        prediction = seed_classifier.predict(text)
        assert set(prediction.scores) == {"billing", "technical", "refund", OTHER}
        assert all(0.0 <= p <= 1.0 for p in prediction.scores.values())
        assert math.fsum(prediction.scores.values()) == pytest.approx(1.0, abs=1e-6)
        assert prediction.confidence == max(prediction.scores.values())
        assert prediction.scores[prediction.label] == prediction.confidence
        assert list(prediction.scores.values()) == sorted(prediction.scores.values(), reverse=True)


def test_clearly_worded_messages_get_high_confidence(seed_classifier):
    assert seed_classifier.predict("I want a refund for my order").confidence > 0.8
    assert seed_classifier.predict("I forgot my password").confidence > 0.8


def test_predict_many_matches_predict(seed_classifier):
    texts = [text for text, _ in HELD_OUT] + ["", "🙂", "x" * 5000]
    many = seed_classifier.predict_many(texts)
    assert len(many) == len(texts)
    for text, batch in zip(texts, many, strict=True):
        single = seed_classifier.predict(text)
        assert batch.label == single.label
        assert batch.confidence == pytest.approx(single.confidence, abs=1e-6)
    assert seed_classifier.predict_many([]) == []


def test_serialised_model_round_trips_with_identical_predictions(seed_classifier):
    data = seed_classifier.to_bytes()
    loaded = LocalClassifier.from_bytes(data)
    assert loaded.labels == seed_classifier.labels == ["billing", OTHER, "refund", "technical"]
    for text, _ in HELD_OUT:
        assert loaded.predict(text) == seed_classifier.predict(text)
    assert loaded.to_bytes() == data


def test_a_trained_model_routes_on_its_margin_over_the_runner_up(seed_classifier):
    assert seed_classifier.routes_on_margin
    for text, _ in HELD_OUT:
        prediction = seed_classifier.predict(text)
        top, second = list(prediction.scores.values())[:2]
        assert prediction.margin == pytest.approx(top - second)
        assert prediction.score == prediction.margin < prediction.confidence
        assert seed_classifier.predict_many([text])[0].margin == pytest.approx(prediction.margin)


def test_a_model_stored_before_margins_keeps_routing_on_its_confidence(seed_classifier):
    # A model stored before had its thresholds chosen on its confidence; its bytes say nothing
    # of margins, and it routes on its confidence as it did.
    older = LocalClassifier.from_bytes(seed_classifier.to_bytes())
    older.routes_on_margin = False
    data = older.to_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        meta = json.loads(np.load(archive.open("meta.npy")).tobytes())
    assert set(meta) == {"format", "labels", "temperature", "vocabularies"}
    loaded = LocalClassifier.from_bytes(data)
    assert not loaded.routes_on_margin
    prediction = loaded.predict("I forgot my password")
    assert prediction.margin is None
    assert prediction.score == prediction.confidence
    assert prediction.confidence == seed_classifier.predict("I forgot my password").confidence
    assert loaded.to_bytes() == data


def test_thresholds_hold_against_the_margin_where_the_model_routes_on_it():
    # Sure of billing but close to the runner-up (and wrong), against less sure of refund but
    # far ahead of the rest (and right).
    close = Prediction("billing", 0.9, {"billing": 0.9, "refund": 0.85}, margin=0.05)
    clear = Prediction("refund", 0.6, {"refund": 0.6, "billing": 0.1}, margin=0.5)
    truths = ["refund", "refund"]
    assert threshold_for_precision([close, clear], truths, target_precision=1.0) == 0.5
    assert pool_thresholds(
        [close, clear],
        truths,
        pools=["billing", "refund"],
        floor=math.inf,
        target_precision=1.0,
        prior_strength=0,
    ) == {"refund": 0.5}
    # On the confidence alone the wrong one ranks first, and no threshold is right every time.
    as_before = [prediction("billing", 0.9), prediction("refund", 0.6)]
    assert threshold_for_precision(as_before, truths, target_precision=1.0) == math.inf


def test_from_bytes_refuses_data_that_is_not_a_model(seed_classifier):
    with pytest.raises(ValueError, match="not a serialised local model"):
        LocalClassifier.from_bytes(b"definitely not a model")
    with pytest.raises(ValueError, match="not a serialised local model"):
        LocalClassifier.from_bytes(seed_classifier.to_bytes()[:-200])


def test_training_twice_with_one_seed_gives_the_same_model():
    examples = seed_examples()[::3]
    texts, labels = [t for t, _ in examples], [p for _, p in examples]
    first = LocalClassifier.train(texts=texts, labels=labels, seed=7)
    second = LocalClassifier.train(texts=texts, labels=labels, seed=7)
    assert first.to_bytes() == second.to_bytes()


def test_two_classes_work():
    examples = [(t, p) for t, p in seed_examples() if p in {"refund", "technical"}]
    classifier = LocalClassifier.train(
        texts=[t for t, _ in examples], labels=[p for _, p in examples]
    )
    assert classifier.labels == ["refund", "technical"]
    refund = classifier.predict("I would like a refund for my purchase")
    technical = classifier.predict("the app crashes with an error on start")
    assert (refund.label, technical.label) == ("refund", "technical")
    assert refund.scores["refund"] + refund.scores["technical"] == pytest.approx(1.0)
    assert refund.confidence > 0.5


def test_150_synthetic_classes_are_learned_and_predicted_fast():
    train = synthetic_examples(150, 8, seed=1)
    test = synthetic_examples(150, 2, seed=2)
    classifier = LocalClassifier.train(
        texts=[t for t, _ in train], labels=[label for _, label in train]
    )
    assert len(classifier.labels) == 150
    result = evaluate(classifier, texts=[t for t, _ in test], labels=[label for _, label in test])
    assert result.accuracy >= 0.95
    prediction = classifier.predict(test[0][0])
    assert len(prediction.scores) == 5
    assert 0.0 < sum(prediction.scores.values()) <= 1.0 + 1e-9
    timings = []
    for text, _ in test[:200]:
        start = time.perf_counter()
        classifier.predict(text)
        timings.append(time.perf_counter() - start)
    # Generous: the benchmark holds the real 1 ms p95 budget; this catches an O(features) slip.
    assert sorted(timings)[len(timings) // 2] < 0.005


def test_classes_with_one_or_two_examples_do_not_break_training():
    examples = [
        *seed_examples(),
        ("I need a copy of the signed data processing agreement", "legal"),
        ("Please send the GDPR data processing agreement for signature", "legal"),
        ("Our lawyer wants to see your subprocessor list", "compliance"),
    ]
    classifier = LocalClassifier.train(
        texts=[t for t, _ in examples], labels=[p for _, p in examples]
    )
    assert classifier.labels == ["billing", "compliance", "legal", OTHER, "refund", "technical"]
    prediction = classifier.predict("Can you send me the data processing agreement?")
    assert prediction.label == "legal"
    assert math.fsum(prediction.scores.values()) <= 1.0 + 1e-9


def test_one_example_per_class_trains_with_soft_probabilities():
    classifier = LocalClassifier.train(
        texts=["refund my order please", "the app crashes on start", "hello there"],
        labels=["refund", "technical", OTHER],
    )
    prediction = classifier.predict("please refund my order")
    assert prediction.label == "refund"
    # No held-out row to calibrate on: the probabilities stay soft rather than certain.
    assert 0.34 < prediction.confidence < 0.9


def test_training_needs_two_labels_and_matching_lengths():
    with pytest.raises(ValueError, match="two distinct labels"):
        LocalClassifier.train(texts=["a", "b"], labels=["x", "x"])
    with pytest.raises(ValueError, match="2 texts but 1 labels"):
        LocalClassifier.train(texts=["a", "b"], labels=["x"])


def prediction(label: str, confidence: float) -> Prediction:
    return Prediction(label=label, confidence=confidence, scores={label: confidence})


def test_threshold_for_precision_worked_example():
    # Ranked by confidence: right, right, wrong, right, wrong. Accepting down to each threshold
    # gives precision 1/1, 2/2, 2/3, 3/4, 3/5.
    predictions = [
        prediction("billing", 0.6),
        prediction("refund", 0.9),
        prediction("other", 0.5),
        prediction("technical", 0.7),
        prediction("refund", 0.8),
    ]
    labels = ["billing", "refund", "billing", "billing", "refund"]
    assert threshold_for_precision(predictions, labels, target_precision=1.0) == 0.8
    assert threshold_for_precision(predictions, labels, target_precision=0.75) == 0.6
    assert threshold_for_precision(predictions, labels, target_precision=0.7) == 0.6
    assert threshold_for_precision(predictions, labels, target_precision=0.6) == 0.5


def test_threshold_for_precision_keeps_ties_together_and_can_accept_nothing():
    predictions = [prediction("a", 0.9), prediction("a", 0.9), prediction("a", 0.4)]
    # Both 0.9s are accepted together (precision 1/2), so no threshold reaches 0.6.
    assert threshold_for_precision(predictions, ["a", "b", "b"], target_precision=0.6) == math.inf
    assert threshold_for_precision(predictions, ["a", "b", "b"], target_precision=0.5) == 0.9
    with pytest.raises(ValueError, match="target_precision"):
        threshold_for_precision(predictions, ["a", "b", "b"], target_precision=0.0)


def test_threshold_for_precision_needs_enough_accepted_messages_behind_it():
    predictions = [prediction("a", 0.99 - i / 100) for i in range(10)]
    labels = ["a"] * 9 + ["b"]
    assert threshold_for_precision(predictions, labels, target_precision=1.0) == pytest.approx(0.91)
    # Nine right answers are too few to vouch for a threshold that must rest on 20.
    assert (
        threshold_for_precision(predictions, labels, target_precision=0.9, min_accepted=20)
        == math.inf
    )
    assert threshold_for_precision(
        predictions, labels, target_precision=0.9, min_accepted=10
    ) == pytest.approx(0.90)


def test_min_support_is_the_floor_or_one_over_the_error_rate():
    assert min_support(error_rate=0.02, floor=30) == 50
    assert min_support(error_rate=1 - 0.98, floor=30) == 50
    assert min_support(error_rate=0.05, floor=30) == 30
    assert min_support(error_rate=0.0, floor=30) == 30


def test_evaluate_matches_a_hand_computed_example():
    classifier = LocalClassifier.train(
        texts=[
            *("apple", "apple apple", "fresh apple"),
            *("banana", "banana banana", "ripe banana"),
            *("cherry", "cherry cherry", "red cherry"),
        ],
        labels=["a"] * 3 + ["b"] * 3 + ["c"] * 3,
    )
    texts = ["apple pie", "apple juice", "banana split", "cherry tart", "banana bread"]
    labels = ["a", "b", "b", "c", "c"]
    assert [p.label for p in classifier.predict_many(texts)] == ["a", "a", "b", "c", "b"]

    result = evaluate(classifier, texts=texts, labels=labels)

    assert result.n == 5
    assert result.accuracy == pytest.approx(3 / 5)
    assert result.confusion == {"a": {"a": 1}, "b": {"a": 1, "b": 1}, "c": {"c": 1, "b": 1}}
    assert result.per_label["a"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1}
    )
    assert result.per_label["b"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    )
    assert result.per_label["c"] == pytest.approx(
        {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    )
    assert result.macro_f1 == pytest.approx((2 / 3 + 0.5 + 2 / 3) / 3)
    assert 0.0 <= result.ece <= 1.0

    # A label that is only ever predicted counts in macro-F1 with F1 0, as in scikit-learn.
    partial = evaluate(classifier, texts=["apple pie", "cherry tart"], labels=["b", "c"])
    assert partial.confusion == {"b": {"a": 1}, "c": {"c": 1}}
    assert partial.per_label["a"] == pytest.approx(
        {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    )
    assert partial.macro_f1 == pytest.approx((0.0 + 0.0 + 1.0) / 3)


def test_expected_calibration_error_worked_example():
    # Bin (0.9, 1.0]: accuracy 1/2, confidence 0.95 -> gap 0.45; bin (0.2, 0.3]: accuracy 0,
    # confidence 0.3 -> gap 0.3; each bin holds half the rows.
    ece = _expected_calibration_error([0.95, 0.95, 0.3, 0.3], [True, False, False, False])
    assert ece == pytest.approx(0.5 * 0.45 + 0.5 * 0.3)
    assert _expected_calibration_error([1.0, 0.0], [True, False]) == pytest.approx(0.0)


# -- intents under pools ------------------------------------------------------------------


def intercept_only(probabilities: dict[str, float], groups: list[str] | None) -> LocalClassifier:
    """A classifier that knows no words: every text gets `probabilities` (by label)."""
    labels = sorted(probabilities)
    return LocalClassifier(
        labels=labels,
        vocabularies=[{} for _ in BLOCKS],
        idf=np.zeros(0),
        indptr=np.zeros(1, dtype=np.int64),
        classes=np.zeros(0, dtype=np.int32),
        weights=np.zeros(0, dtype=np.float32),
        intercept=np.log([probabilities[label] for label in labels]),
        temperature=1.0,
        groups=groups,
    )


def test_a_pool_wins_by_the_summed_probability_of_its_intents_not_by_the_top_intent():
    # The single most likely intent (0.31) is refund's; billing's three intents sum to 0.69.
    probabilities = {"invoice": 0.23, "plan": 0.23, "vat": 0.23, "money_back": 0.31}
    model = intercept_only(probabilities, groups=["billing", "refund", "billing", "billing"])
    assert model.labels == ["billing", "refund"]
    assert model.intents == {
        "invoice": "billing",
        "money_back": "refund",
        "plan": "billing",
        "vat": "billing",
    }
    prediction = model.predict("anything at all")
    assert prediction.label == "billing"
    assert prediction.confidence == pytest.approx(0.69)
    assert prediction.scores == pytest.approx({"billing": 0.69, "refund": 0.31})
    # The intent recorded is the winning pool's most likely one (ties: the first by name).
    assert prediction.intent == "invoice"
    assert prediction.intent_confidence == pytest.approx(0.23)
    # Trained on the same labels as pools, the top intent would have won.
    assert intercept_only(probabilities, groups=None).predict("x").label == "money_back"
    assert model.predict_many(["x", "y"]) == [prediction, prediction]


def test_a_model_of_intents_round_trips_and_says_so_in_its_format():
    examples = synthetic_examples(n_classes=6, per_class=12, seed=1)
    groups = {f"intent-{c:03d}": ("alpha" if c < 4 else "beta") for c in range(6)}
    model = LocalClassifier.train(
        texts=[t for t, _ in examples], labels=[label for _, label in examples], groups=groups
    )
    assert model.labels == ["alpha", "beta"]
    assert model.intents == groups
    data = model.to_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        meta = json.loads(np.load(archive.open("meta.npy")).tobytes())
    assert meta["format"] == "supportdesk-local-model/2"
    assert meta["groups"] == ["alpha"] * 4 + ["beta"] * 2
    loaded = LocalClassifier.from_bytes(data)
    assert loaded.to_bytes() == data
    for text, intent in examples[:: len(examples) // 12]:
        prediction = loaded.predict(text)
        assert prediction == model.predict(text)
        assert (prediction.label, prediction.intent) == (groups[intent], intent)


def test_a_model_of_pools_keeps_its_format_and_gives_no_intent(seed_classifier):
    data = seed_classifier.to_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        meta = json.loads(np.load(archive.open("meta.npy")).tobytes())
    assert meta["format"] == "supportdesk-local-model/1"
    assert set(meta) == {"format", "labels", "temperature", "vocabularies", "routes_on"}
    assert meta["routes_on"] == "margin"
    assert seed_classifier.intents == {}
    prediction = LocalClassifier.from_bytes(data).predict("I forgot my password")
    assert (prediction.label, prediction.intent, prediction.intent_confidence) == (
        "technical",
        None,
        None,
    )


def test_training_on_intents_needs_a_group_for_every_intent_and_two_groups():
    examples = synthetic_examples(n_classes=3, per_class=5, seed=2)
    texts, labels = [t for t, _ in examples], [label for _, label in examples]
    with pytest.raises(ValueError, match="labels without a group: intent-002"):
        LocalClassifier.train(
            texts=texts, labels=labels, groups={"intent-000": "a", "intent-001": "b"}
        )
    with pytest.raises(ValueError, match="at least two groups"):
        LocalClassifier.train(texts=texts, labels=labels, groups=dict.fromkeys(set(labels), "a"))


def _predicted(label, confidence):
    return Prediction(label=label, confidence=confidence, scores={label: confidence})


def test_a_pool_gets_its_own_threshold_only_where_its_shrunk_precision_holds():
    # Out-of-sample predictions: billing right 4 of 4, refund right 1 of 3 (its errors near the
    # top), technical never predicted, a confident `other`.
    rows = [
        ("billing", 0.99, "billing"),
        ("billing", 0.97, "billing"),
        ("refund", 0.96, "billing"),
        ("billing", 0.95, "billing"),
        ("refund", 0.94, "refund"),
        ("refund", 0.93, "technical"),
        ("billing", 0.92, "billing"),
        (OTHER, 0.91, "refund"),
        ("billing", 0.5, "refund"),
    ]
    predictions = [_predicted(label, confidence) for label, confidence, _ in rows]
    truths = [truth for _, _, truth in rows]
    pools = ["billing", "refund", "technical", OTHER]

    chosen = pool_thresholds(
        predictions, truths, pools=pools, floor=0.9, target_precision=0.9, prior_strength=2
    )

    # billing: 4/4 from 0.92 down to the floor, (4 + 2 * 5/7) / (4 + 2) = 0.905 (the 0.5 below
    # the floor is never considered).
    assert chosen["billing"] == 0.9
    # refund: wrong at its most confident; (1 + 2 * 5/7) / (3 + 2) = 0.49 at best: none.
    assert "refund" not in chosen
    # technical has no prediction of its own: it rests on every pool's precision at the floor
    # (5 right of 7, 0.71), which is below the target.
    assert "technical" not in chosen
    assert OTHER not in chosen
    # With support required, a pool needs that many accepted predictions of its own.
    assert "billing" not in pool_thresholds(
        predictions,
        truths,
        pools=pools,
        floor=0.9,
        target_precision=0.9,
        prior_strength=2,
        min_support=5,
    )
    # A pool never predicted, where every pool's precision holds, gets the floor; without a
    # floor (no confidence where every pool's precision is shown) only pools predicted get one.
    right = [_predicted("billing", 0.99), _predicted("billing", 0.98)]
    assert pool_thresholds(
        right, ["billing"] * 2, pools=pools, floor=0.95, target_precision=0.9, prior_strength=2
    ) == {"billing": 0.95, "refund": 0.95, "technical": 0.95}
    assert pool_thresholds(
        right, ["billing"] * 2, pools=pools, floor=math.inf, target_precision=0.9, prior_strength=2
    ) == {"billing": 0.98}

"""The curated examples (text, label) models are trained on, kept for later retrainings."""

import hashlib
from collections.abc import Sequence

from apps.orchestrator.local_model import OTHER, seed_examples
from apps.review.models import TrainingExample


def training_base(*, labels: set[str]) -> list[tuple[str, str]]:
    """The curated examples (text, label) a retraining starts from, for `labels` only.

    They are the examples models were trained on by `train_router` / `seed_demo`
    (`TrainingExample`). An installation that has none yet (trained before they were kept)
    falls back to the shipped seed examples, and takes their `other` examples only when one of
    the shipped pools is among `labels`: next to pools of its own, "tell me a joke" labelled
    `other` would contradict a pool for jokes.
    """
    stored = list(
        TrainingExample.objects.filter(label__in=labels).order_by("id").values_list("text", "label")
    )
    if stored or TrainingExample.objects.exists():
        return stored
    shipped = seed_examples()
    shipped_pools = {label for _, label in shipped} - {OTHER}
    usable = labels if shipped_pools & labels else labels - {OTHER}
    return [(text, label) for text, label in shipped if label in usable]


def training_examples_store(*, examples: Sequence[tuple[str, str]], dataset: str = "") -> int:
    """Keep curated training examples (text, label) for later retrainings; returns how many
    were new (an example already kept, same text and label, is skipped)."""
    rows: dict[str, TrainingExample] = {}
    for text, label in examples:
        if not text.strip() or not label:
            continue
        digest = hashlib.sha256(f"{label}\x00{text}".encode()).hexdigest()
        rows.setdefault(
            digest,
            TrainingExample(text=text, label=label[:64], dataset=dataset[:200], digest=digest),
        )
    before = TrainingExample.objects.count()
    TrainingExample.objects.bulk_create(rows.values(), ignore_conflicts=True, batch_size=500)
    return TrainingExample.objects.count() - before

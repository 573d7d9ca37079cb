"""Local model versions: training one from examples, and switching the active one."""

import hmac
import logging
import math
import random
from collections.abc import Mapping, Sequence

from django.conf import settings
from django.db import transaction

from apps.core.errors import Conflict, PermissionDenied
from apps.core.users import StaffUser
from apps.orchestrator import selectors
from apps.orchestrator.local_model import (
    LocalClassifier,
    evaluate,
    min_support,
    threshold_for_precision,
)
from apps.orchestrator.models import ModelVersion, ModelVersionActivation
from apps.pools.selectors import intent_pools
from apps.review.training.examples import training_examples_store

logger = logging.getLogger(__name__)


ACTIVATE_PERMISSION = "orchestrator.change_modelversion"


@transaction.atomic
def model_version_train(
    *,
    examples: Sequence[tuple[str, str]],
    intents: Mapping[str, str] | None = None,
    note: str = "",
    activate: bool = True,
    target_precision: float = 0.98,
    holdout_share: float = 0.2,
    seed: int = 0,
    show_progress: bool = False,
) -> ModelVersion:
    """Train a local classifier, evaluate it on a held-out slice, store it signed.

    The threshold is the lowest confidence at which held-out decisions reach
    `target_precision`; the final model is then trained on every example.

    With `intents` (label -> pool, for every label of `examples`) the labels are intents: the
    model learns them and routes to the pool by the summed probability of its intents
    (`ModelVersion.Kind.INTENT`); precision, accuracy and threshold are the pools'. The
    examples kept for retraining carry their intents (those stored as a pool's `Intent`), so
    retraining learns intents again.
    """
    rows = list(examples)

    def pool_of(label: str) -> str:
        return label if intents is None else intents[label]

    rng = random.Random(seed)
    rng.shuffle(rows)
    cut = int(len(rows) * (1 - holdout_share))
    train, held = rows[:cut], rows[cut:]
    metrics: dict[str, object] = {}
    threshold = settings.ROUTER_LOCAL_THRESHOLD
    # With the embedding tier on, both models average TF-IDF with embeddings, so the threshold
    # below is measured on the averaged probabilities (ROUTER_EMBEDDINGS=off later routes on
    # TF-IDF alone against it: docs/orchestrator.md).
    embedder = selectors.local_embedder()
    if held and len({pool_of(label) for _, label in train}) >= 2:
        candidate = LocalClassifier.train(
            texts=[t for t, _ in train],
            labels=[label for _, label in train],
            seed=seed,
            groups=intents,
            embedder=embedder,
        )
        held_texts, held_labels = [t for t, _ in held], [pool_of(label) for _, label in held]
        evaluation = evaluate(candidate, texts=held_texts, labels=held_labels)
        predictions = candidate.predict_many(held_texts)
        # A precision measured on a handful of held-out texts says little: the threshold must
        # rest on at least max(ROUTER_THRESHOLD_MIN_ROUTED, 1/(1 - precision)) of them, or the
        # model auto-routes nothing (1.0) until retraining has measured it on people's labels.
        min_accepted = min_support(
            error_rate=1 - target_precision, floor=settings.ROUTER_THRESHOLD_MIN_ROUTED
        )
        threshold = threshold_for_precision(
            predictions, held_labels, target_precision=target_precision, min_accepted=min_accepted
        )
        metrics = {
            "accuracy": evaluation.accuracy,
            "macro_f1": evaluation.macro_f1,
            "ece": evaluation.ece,
            "per_label": evaluation.per_label,
            "holdout": evaluation.n,
            "target_precision": target_precision,
            "min_accepted": min_accepted,
            "threshold_met": math.isfinite(threshold),
            "threshold_with_embeddings": candidate.uses_embeddings,
        }
        if intents is not None:
            metrics["intent_accuracy"] = sum(
                p.intent == label for p, (_, label) in zip(predictions, held, strict=True)
            ) / len(held)
    classifier = LocalClassifier.train(
        texts=[t for t, _ in rows],
        labels=[label for _, label in rows],
        seed=seed,
        show_progress=show_progress,
        groups=intents,
        embedder=embedder,
    )
    # The embedding weight w, the embeddings it was chosen for and the held-out accuracy of
    # each w (embedding_weight 0 when the tier is off).
    metrics.update(classifier.embedding_report)
    artifact = classifier.to_bytes()
    with transaction.atomic():
        previous = ModelVersion.objects.filter(active=True).first() if activate else None
        if activate:
            ModelVersion.objects.filter(active=True).update(active=False)
        version = ModelVersion.objects.create(
            labels=classifier.labels,
            kind=ModelVersion.Kind.POOL if intents is None else ModelVersion.Kind.INTENT,
            artifact=artifact,
            signature=selectors.artifact_signature(artifact),
            metrics=metrics,
            threshold=min(max(threshold, 0.0), 1.0),
            training_examples=len(rows),
            note=note,
            active=activate,
        )
        if activate:
            # Every switch of the active model is in the activation history, this one too.
            ModelVersionActivation.objects.create(
                version=version, previous=previous, note=f"trained: {note}"[:300]
            )
            # What an active model was trained on is the base later retrainings start from.
            # An intent is kept as such when it is one of its pool's intents (`Intent`, as
            # train_router stores them), so that retraining knows its pool; otherwise its pool.
            stored = intent_pools(active_only=False) if intents is not None else {}
            training_examples_store(
                examples=[
                    (text, label if stored.get(label) == pool_of(label) else pool_of(label))
                    for text, label in rows
                ],
                dataset=note or f"model v{version.pk}",
            )
        return version


def model_version_activate(
    *, version: ModelVersion, actor: StaffUser | None, note: str = ""
) -> ModelVersionActivation:
    """Make `version` the active local model (a rollback when it is older) and record who did it,
    when, and which version it replaced. `actor` None: the retraining gate did it.

    Routing picks the switch up at once: `selectors.local_tier_active` reads the active version
    on every pipeline build and caches classifiers by version id.
    """
    if actor is not None and not actor.has_perm(ACTIVATE_PERMISSION):
        raise PermissionDenied("Only users who may change model versions can activate one.")
    with transaction.atomic():
        # Lock the active row and then the target, always in that order.
        previous = ModelVersion.objects.select_for_update().filter(active=True).first()
        locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
        if previous is not None and previous.pk == locked.pk:
            raise Conflict(f"{locked} is already active.")
        artifact = bytes(locked.artifact)
        if not hmac.compare_digest(selectors.artifact_signature(artifact), locked.signature):
            raise Conflict(f"{locked} has a bad signature; it cannot be activated.")
        ModelVersion.objects.filter(active=True).update(active=False)
        ModelVersion.objects.filter(pk=locked.pk).update(active=True)
        activation = ModelVersionActivation.objects.create(
            version=locked, previous=previous, actor=actor, note=note.strip()[:300]
        )
    logger.info(
        "local model v%s activated (was %s) by %s",
        locked.pk,
        f"v{previous.pk}" if previous else "none",
        actor or "retraining",
    )
    return activation

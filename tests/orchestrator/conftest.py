from functools import cache

import pytest

from apps.flows.demo import DEFAULT_POOLS
from apps.orchestrator.local_model import OTHER, LocalClassifier, embeddings, seed_examples
from apps.orchestrator.models import ModelVersion
from apps.orchestrator.selectors import artifact_signature
from apps.pools.services import intent_ensure, pool_upsert
from tests.fakes.fixtures import messages_api  # noqa: F401  (a fixture)


@pytest.fixture(scope="module")
def embedder():
    """The shipped sentence embedder (the embedding tier's); skips where the tier is off."""
    found = embeddings.embedder()
    if found is None:
        pytest.skip("ROUTER_EMBEDDINGS is off in this environment")
    return found


@pytest.fixture
def pools(db):
    return {spec["slug"]: pool_upsert(**spec) for spec in DEFAULT_POOLS}


@pytest.fixture
def llm(settings, messages_api):  # noqa: F811
    """The real SDK pointed at the stand-in, with short timeouts so fault tests stay fast."""
    settings.ANTHROPIC_API_KEY = "test-key"
    settings.ANTHROPIC_BASE_URL = messages_api.url
    settings.ROUTER_TIMEOUT_SECONDS = 1.0
    settings.ROUTER_MAX_RETRIES = 2
    return messages_api


@cache
def _seed_artifact() -> tuple[bytes, list[str]]:
    classifier = LocalClassifier.train(
        texts=[t for t, _ in seed_examples()], labels=[label for _, label in seed_examples()]
    )
    return classifier.to_bytes(), classifier.labels


@pytest.fixture
def local_model(db, pools) -> ModelVersion:
    """The local model trained on the shipped seed examples (trained once per test run)."""
    artifact, labels = _seed_artifact()
    return ModelVersion.objects.create(
        labels=labels,
        artifact=artifact,
        signature=artifact_signature(artifact),
        threshold=0.6,
        training_examples=len(seed_examples()),
        active=True,
    )


def seed_intents() -> list[tuple[str, str, str]]:
    """The seed examples as (text, intent, pool): each pool's examples dealt in turn to two
    intents, `<pool>_a` and `<pool>_b` (made-up intents, for the mechanics)."""
    return [(text, f"{pool}_{'ab'[i % 2]}", pool) for i, (text, pool) in enumerate(seed_examples())]


@cache
def _intent_artifact() -> bytes:
    rows = seed_intents()
    classifier = LocalClassifier.train(
        texts=[t for t, _, _ in rows],
        labels=[intent for _, intent, _ in rows],
        groups={intent: pool for _, intent, pool in rows},
    )
    return classifier.to_bytes()


@pytest.fixture
def intent_model(db, pools) -> ModelVersion:
    """A local model of intents trained on `seed_intents`, active, its intents stored."""
    for _, intent, pool in seed_intents():
        if pool != OTHER:
            intent_ensure(slug=intent, pool=pools[pool])
    artifact = _intent_artifact()
    return ModelVersion.objects.create(
        labels=LocalClassifier.from_bytes(artifact).labels,
        kind=ModelVersion.Kind.INTENT,
        artifact=artifact,
        signature=artifact_signature(artifact),
        threshold=0.6,
        training_examples=len(seed_examples()),
        active=True,
    )


def route_reply(pool, confidence=0.92, action="route", missing=None, reason="fits the pool"):
    from tests.fakes.messages_api import tool_use

    return tool_use(
        {
            "action": action,
            "pool": pool,
            "confidence": confidence,
            "reason": reason,
            "missing_fields": missing or [],
        }
    )

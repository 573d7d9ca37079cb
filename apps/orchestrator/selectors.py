"""Read-side queries of the orchestrator."""

import hashlib
import hmac
import logging
import threading
from collections.abc import Sequence
from datetime import datetime

from django.conf import settings
from django.db.models import QuerySet

from apps.chat.models import Message
from apps.core.sql import rows_where
from apps.orchestrator.local_model import LocalClassifier, embeddings
from apps.orchestrator.models import ModelVersion, PromptVersion, RoutingDecision, RoutingRule
from apps.orchestrator.outcomes import LocalTier
from apps.pools.models import Intent, Pool
from apps.tickets.models import Ticket

logger = logging.getLogger(__name__)

# By (version id, signature, embeddings on): a database restored or rebuilt may reuse an id for
# another model.
_classifiers: dict[tuple[int, str, bool], LocalClassifier] = {}
_classifiers_lock = threading.Lock()
# A version's fields but its artifact (the model's bytes, read only when not yet loaded).
_VERSION_COLUMNS = [f.name for f in ModelVersion._meta.concrete_fields if f.name != "artifact"]


def artifact_signature(artifact: bytes) -> str:
    """HMAC-SHA256 of a model artifact under SECRET_KEY: only artifacts we wrote are loaded."""
    return hmac.new(settings.SECRET_KEY.encode(), artifact, hashlib.sha256).hexdigest()


def local_embedder() -> embeddings.Embedder | None:
    """The sentence embedder for the local model, or None when ROUTER_EMBEDDINGS is off or the
    model is not installed."""
    return embeddings.embedder() if settings.ROUTER_EMBEDDINGS else None


def prompt_active(*, purpose: str = "router") -> PromptVersion | None:
    return PromptVersion.objects.filter(purpose=purpose, active=True).first()


def routing_pools() -> list[Pool]:
    """The pools a ticket may be routed to (the active ones), in display order. Every routing
    run reads them: a statement written once (apps/core/sql.py)."""
    return rows_where(Pool, [("active", "=", True)], order_by=["name", "id"])


def rule_list_active(*, pools: Sequence[Pool] | None = None) -> list[RoutingRule]:
    """The active rules of active pools, highest priority first, each with its pool (`pools`:
    the active pools, when the caller has read them already)."""
    by_id = {pool.pk: pool for pool in (routing_pools() if pools is None else pools)}
    rules = rows_where(RoutingRule, [("active", "=", True)], order_by=["-priority", "id"])
    active = [rule for rule in rules if rule.pool_id in by_id]
    for rule in active:
        rule.pool = by_id[rule.pool_id]
    return active


def local_tier_active() -> LocalTier | None:
    """The active local model, loaded once per process and version; None if there is none."""
    # Every routing run asks: a statement written once (apps/core/sql.py), the artifact left.
    found = rows_where(
        ModelVersion,
        [("active", "=", True)],
        columns=_VERSION_COLUMNS,
        order_by="-created_at",
        limit=1,
    )
    if not found:
        return None
    version = found[0]
    key = (version.pk, version.signature, bool(settings.ROUTER_EMBEDDINGS))
    classifier = _classifiers.get(key)
    if classifier is None:
        with _classifiers_lock:
            classifier = _classifiers.get(key)
            if classifier is None:
                artifact = bytes(
                    ModelVersion.objects.values_list("artifact", flat=True).get(pk=version.pk)
                )
                if not hmac.compare_digest(artifact_signature(artifact), version.signature):
                    logger.error(
                        "local model v%s has a bad signature; local tier disabled", version.pk
                    )
                    return None
                # A version with an embedding head mixes it in only with the tier on; off, it
                # routes on TF-IDF alone against the threshold measured on the mixture.
                classifier = LocalClassifier.from_bytes(artifact, embedder=local_embedder())
                _classifiers.clear()  # keep one model in memory
                _classifiers[key] = classifier
    intents: dict[str, Intent] = {}
    if classifier.intents:
        intents = Intent.objects.select_related("pool").in_bulk(
            list(classifier.intents), field_name="slug"
        )
    return LocalTier(
        version=version,
        classifier=classifier,
        threshold=version.threshold,
        intents=intents,
        pool_thresholds={str(k): float(v) for k, v in (version.pool_thresholds or {}).items()},
    )


def ticket_routing_text(*, ticket: Ticket) -> str:
    """Everything the customer wrote on this ticket, oldest first."""
    texts = rows_where(
        Message,
        [("ticket", "=", ticket.pk), ("sender", "=", Message.Sender.CUSTOMER)],
        columns=["text"],
        order_by=["created_at", "id"],
    )
    return "\n".join(message.text for message in texts)


def decision_list(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    tier: str | None = None,
    pool: Pool | None = None,
    ticket: Ticket | None = None,
    deciding: bool | None = None,
) -> QuerySet[RoutingDecision]:
    """Routing decisions, newest first, filtered (`deciding`: whether the attempt ended its run)."""
    decisions = RoutingDecision.objects.select_related("pool", "prompt_version", "intent").order_by(
        "-created_at", "-id"
    )
    if since is not None:
        decisions = decisions.filter(created_at__gte=since)
    if until is not None:
        decisions = decisions.filter(created_at__lt=until)
    if tier is not None:
        decisions = decisions.filter(tier=tier)
    if pool is not None:
        decisions = decisions.filter(pool=pool)
    if ticket is not None:
        decisions = decisions.filter(ticket=ticket)
    if deciding is not None:
        decisions = decisions.filter(ends_run=deciding)
    return decisions


def ticket_deciding_tier(*, ticket_id: int) -> str | None:
    """The tier of the ticket's latest final routing decision (dry runs aside), or None."""
    return (
        RoutingDecision.objects.filter(ticket_id=ticket_id)
        .real()
        .deciding()
        .order_by("-created_at", "-id")
        .values_list("tier", flat=True)
        .first()
    )

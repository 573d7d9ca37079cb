"""The labels retraining learns from: people's verdicts (review, audit, reroute) and, weighted
lower, the LLM's confident decisions; and which of them are held out for the gate."""

import hashlib
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from apps.orchestrator.local_model import OTHER
from apps.orchestrator.models import RoutingDecision
from apps.review.models import RoutingLabel

Tier = RoutingDecision.Tier
Action = RoutingDecision.Action


DISTILLED = "distilled"


@dataclass(frozen=True)
class TrainingLabel:
    """One labelled text for the local model."""

    ticket_id: int
    text: str  # the redacted customer text the router saw
    label: str  # a pool slug, or OTHER when no pool fits
    weight: float  # 1.0 for people's labels, ROUTER_DISTILL_WEIGHT for distilled ones
    source: str  # a RoutingLabel.Source value, or DISTILLED


def training_labels(*, since: datetime | None = None) -> list[TrainingLabel]:
    """Labelled texts for retraining, oldest ticket first: one per ticket.

    People's labels (review, audit, reroute): the ticket's newest label wins; its text is the
    newest non-empty text among the ticket's labels. Distilled labels (when
    ROUTER_DISTILL_WEIGHT > 0): a ticket without any human label whose newest deciding LLM or
    escalation decision routed it to a pool with confidence >= ROUTER_DISTILL_MIN_CONFIDENCE,
    at ROUTER_DISTILL_WEIGHT. Texts that are empty are skipped.
    """
    rows = RoutingLabel.objects.order_by("ticket_id", "-created_at", "-id").values_list(
        "ticket_id", "source", "pool__slug", "text"
    )
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    verdicts: dict[int, tuple[str, str]] = {}
    texts: dict[int, str] = {}
    for ticket_id, source, slug, text in rows.iterator():
        verdicts.setdefault(ticket_id, (source, slug or OTHER))
        if ticket_id not in texts and text.strip():
            texts[ticket_id] = text
    labels = [
        TrainingLabel(ticket_id, texts[ticket_id], label, 1.0, source)
        for ticket_id, (source, label) in verdicts.items()
        if ticket_id in texts
    ]
    weight = float(settings.ROUTER_DISTILL_WEIGHT)
    if weight > 0:
        labels += _distilled_labels(since=since, weight=weight)
    return sorted(labels, key=lambda label: label.ticket_id)


def _distilled_labels(*, since: datetime | None, weight: float) -> list[TrainingLabel]:
    decisions = (
        RoutingDecision.objects.real()
        .deciding()
        .filter(
            valid=True,
            tier__in=[Tier.LLM, Tier.ESCALATION],
            action__in=[Action.ROUTE, Action.CLARIFY],
            pool__isnull=False,
            confidence__gte=settings.ROUTER_DISTILL_MIN_CONFIDENCE,
        )
        .exclude(redacted="")
        .exclude(ticket_id__in=RoutingLabel.objects.values("ticket_id"))
        .order_by("ticket_id", "-created_at", "-id")
        .values_list("ticket_id", "pool__slug", "redacted")
    )
    if since is not None:
        decisions = decisions.filter(created_at__gte=since)
    newest: dict[int, TrainingLabel] = {}
    for ticket_id, slug, text in decisions.iterator():
        if ticket_id not in newest and text.strip():
            newest[ticket_id] = TrainingLabel(ticket_id, text, slug, weight, DISTILLED)
    return list(newest.values())


def label_held_out(*, ticket_id: int, seed: int, share: float) -> bool:
    """Whether a ticket's label is in the held-out slice: a hash of (seed, ticket id) below
    `share`, so a ticket stays on its side however many labels come after it."""
    digest = hashlib.blake2b(f"{seed}:{ticket_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share

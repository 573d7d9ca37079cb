"""The labels retraining learns from: people's verdicts (review, audit, reroute) and, weighted
lower, the LLM's confident decisions and the local tier's own routes that nobody moved; and
which of them are held out for the gate."""

import functools
import hashlib
import operator
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Q

from apps.orchestrator.local_model import OTHER
from apps.orchestrator.models import RoutingDecision
from apps.review.models import RoutingLabel

Tier = RoutingDecision.Tier
Action = RoutingDecision.Action


# Labels that come from a routing decision, not from a person: the LLM's confident answer
# (distilled), and a route of the local tier itself that nobody moved (unmoved).
DISTILLED = "distilled"
UNMOVED = "unmoved"
FROM_DECISIONS = frozenset({DISTILLED, UNMOVED})


@dataclass(frozen=True)
class TrainingLabel:
    """One labelled text for the local model."""

    ticket_id: int
    text: str  # the redacted customer text the router saw
    label: str  # a pool slug, or OTHER when no pool fits
    weight: float  # 1.0 for people's labels, less for those from decisions (see below)
    source: str  # a RoutingLabel.Source value, DISTILLED or UNMOVED

    @property
    def from_people(self) -> bool:
        """A person's verdict, not a routing decision's."""
        return self.source not in FROM_DECISIONS


def training_labels(*, since: datetime | None = None) -> list[TrainingLabel]:
    """Labelled texts for retraining, oldest ticket first: one per ticket.

    People's labels (review, audit, reroute): the ticket's newest label wins; its text is the
    newest non-empty text among the ticket's labels. Distilled labels (when
    ROUTER_DISTILL_WEIGHT > 0): a ticket without any human label whose newest deciding LLM or
    escalation decision routed it to a pool with confidence >= ROUTER_DISTILL_MIN_CONFIDENCE,
    at ROUTER_DISTILL_WEIGHT. Unmoved labels (when ROUTER_UNMOVED_WEIGHT > 0): a ticket
    without any human label whose newest deciding local-tier decision routed it to a pool, at
    ROUTER_UNMOVED_WEIGHT. An agent's "wrong pool" later is a person's label and
    replaces either at the next retraining. Texts that are empty are skipped.

    Why the unmoved routes: without them the local tier's mistakes leave labels (agents move
    them) and its right routes leave none, so it would learn from its errors only. They train;
    no threshold is chosen on them (retrain.py): a model like the local tier agrees with its own
    answers, right or wrong.
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
    return sorted(labels + _decision_labels(since=since), key=lambda label: label.ticket_id)


def _decision_labels(*, since: datetime | None) -> list[TrainingLabel]:
    """Distilled and unmoved labels (see `training_labels`): one per ticket, from its newest
    deciding decision of the kinds whose weight is above 0."""
    distilled = float(settings.ROUTER_DISTILL_WEIGHT)
    unmoved = float(settings.ROUTER_UNMOVED_WEIGHT)
    kinds: list[Q] = []
    if distilled > 0:
        kinds.append(
            Q(
                tier__in=[Tier.LLM, Tier.ESCALATION],
                action__in=[Action.ROUTE, Action.CLARIFY],
                confidence__gte=settings.ROUTER_DISTILL_MIN_CONFIDENCE,
            )
        )
    if unmoved > 0:
        kinds.append(Q(tier=Tier.LOCAL, action=Action.ROUTE))
    if not kinds:
        return []
    decisions = (
        RoutingDecision.objects.real()
        .deciding()
        .filter(functools.reduce(operator.or_, kinds), valid=True, pool__isnull=False)
        .exclude(redacted="")
        .exclude(ticket_id__in=RoutingLabel.objects.values("ticket_id"))
        .order_by("ticket_id", "-created_at", "-id")
        .values_list("ticket_id", "tier", "pool__slug", "redacted")
    )
    if since is not None:
        decisions = decisions.filter(created_at__gte=since)
    newest: dict[int, TrainingLabel] = {}
    for ticket_id, tier, slug, text in decisions.iterator():
        if ticket_id not in newest and text.strip():
            source, weight = (UNMOVED, unmoved) if tier == Tier.LOCAL else (DISTILLED, distilled)
            newest[ticket_id] = TrainingLabel(ticket_id, text, slug, weight, source)
    return list(newest.values())


def label_held_out(*, ticket_id: int, seed: int, share: float) -> bool:
    """Whether a ticket's label is in the held-out slice: a hash of (seed, ticket id) below
    `share`, so a ticket stays on its side however many labels come after it."""
    digest = hashlib.blake2b(f"{seed}:{ticket_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share

"""Audit samples: a random share of confident automatic routes, checked by a reviewer.

Their verdicts are the one unbiased label of automatic routing (see
`apps.review.selectors.routing_accuracy`).

How a decision is chosen — independent Bernoulli sampling within each tier. Every final,
confident automatic route is audited with probability `share`, drawn on its own from the
operating system's random source, and the item records the decision's tier (the stratum).

- Stratified by tier: within a tier each decision has the same inclusion probability whatever
  the other tiers do, so each tier's audited share converges to `share` however traffic splits
  across tiers, and a tier's audits are a simple random sample of that tier's decisions.
  Because the share is also the same in every tier, pooled estimates are self-weighting.
- Unpredictable: the draw uses `random.SystemRandom` and no state, so neither an agent nor a
  customer can tell from the ticket stream which ticket will be audited next.
- Safe with many workers and no hot-path contention: there is nothing to share between
  processes and no row to lock inside the routing transaction.

Systematic sampling (every k-th decision of a tier from a random start) was considered: it
fixes each tier's sample size exactly rather than leaving it binomial, but it needs a per-tier
counter in the database, locked by every routing transaction of that tier (routing would
serialise on one row per tier), and once one audited ticket is seen the next ones follow every
k-th decision. The binomial spread of the sample size (at 2% of 5,000 decisions, 100 ± 10
audits) is small next to the uncertainty of the accuracy estimate itself, which the Wilson
interval reports.
"""

import json
import logging
import random
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from apps.orchestrator.models import RoutingDecision
from apps.pools.models import Pool
from apps.review.models import ReviewItem
from apps.review.selectors import automatic_decision_list
from apps.tickets.models import Ticket

logger = logging.getLogger(__name__)

_SYSTEM_RANDOM = random.SystemRandom()
_SEEDED: dict[int, random.Random] = {}


def _draws() -> random.Random:
    """The operating system's random source; a seeded generator when REVIEW_AUDIT_SEED is set
    (benchmarks and experiments that must be reproducible; never in production, where a
    predictable draw would tell an agent which tickets nobody will check)."""
    seed = settings.REVIEW_AUDIT_SEED
    if seed is None:
        return _SYSTEM_RANDOM
    return _SEEDED.setdefault(int(seed), random.Random(seed))


def audit_item_maybe_open(
    *,
    ticket: Ticket,
    decision: RoutingDecision,
    share: float | None = None,
    rng: random.Random | None = None,
) -> ReviewItem | None:
    """Draw whether a confident automatic route is audited; if so open an audit item (the
    ticket is not held). Returns the item, or None when not drawn, not eligible, or the ticket
    already has an open audit."""
    if decision.ticket_id != ticket.pk:
        raise ValueError(f"decision {decision.pk} does not belong to ticket {ticket.pk}")
    share = float(settings.REVIEW_AUDIT_SHARE if share is None else share)
    if share <= 0 or decision.pk is None:
        return None
    # Draw first: the draw is independent of eligibility, and most routes stop here unqueried.
    if (rng if rng is not None else _draws()).random() >= share:
        return None
    # The population routing_accuracy estimates for: one definition, shared with it.
    if not automatic_decision_list().filter(pk=decision.pk).exists():
        return None
    taken = ReviewItem.objects.filter(kind=ReviewItem.Kind.AUDIT).filter(
        Q(decision=decision) | Q(ticket=ticket, status=ReviewItem.Status.OPEN)
    )
    if taken.exists():
        return None
    try:
        with transaction.atomic():  # a savepoint: a concurrent audit of the ticket wins
            item = ReviewItem.objects.create(
                ticket=ticket,
                kind=ReviewItem.Kind.AUDIT,
                reason=ReviewItem.Reason.AUDIT,
                decision=decision,
                tier=decision.tier,
                suggested_pool=decision.pool,
                candidates=_candidates(decision),
            )
    except IntegrityError:
        return None
    logger.info(
        "ticket %s: %s decision %s sampled for audit", ticket.pk, decision.tier, decision.pk
    )
    return item


def _candidates(decision: RoutingDecision) -> list[dict[str, Any]]:
    """The routed pool with its confidence and — from the local model, which scores every
    label — the other active pools it scored; best first."""
    assert decision.pool is not None  # an automatic route names a pool
    assert decision.confidence is not None  # and carries a confidence
    scores = {decision.pool.slug: float(decision.confidence)}
    if decision.tier == RoutingDecision.Tier.LOCAL:
        active = set(Pool.objects.filter(active=True).values_list("slug", flat=True))
        for slug, score in _local_scores(decision.raw_output).items():
            if slug in active and slug not in scores:
                scores[slug] = score
    ranked = sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))
    return [{"pool": slug, "score": round(score, 4)} for slug, score in ranked]


def _local_scores(raw_output: str) -> dict[str, float]:
    try:
        scores = json.loads(raw_output).get("scores", {})
    except (ValueError, AttributeError):
        return {}
    if not isinstance(scores, dict):
        return {}
    return {
        str(slug): float(score)
        for slug, score in scores.items()
        if isinstance(score, int | float) and not isinstance(score, bool)
    }

"""Statistics for prompt A/B tests: the stable traffic split, the two-proportion z-test and
the sample size a two-proportion test needs. Pure functions (no Django), so the split can be
checked from any process.

The normal distribution comes from the standard library (`statistics.NormalDist`, and
`math.erfc` for tail areas, which keeps small p-values exact instead of 1 - 0.99999...).
"""

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

_NORMAL = NormalDist()


def arm_position(*, experiment_id: int, ticket_id: int) -> float:
    """A ticket's place in [0, 1) for one experiment: blake2b of (experiment id, ticket id).

    A keyed cryptographic hash, not Python's `hash()` (salted per process): every worker and
    every retry puts the same ticket in the same arm, and a new experiment reshuffles tickets.
    """
    digest = hashlib.blake2b(f"{experiment_id}:{ticket_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def arm_is_variant(*, experiment_id: int, ticket_id: int, split: float) -> bool:
    """Whether the ticket gets the variant: its position is below the variant's share `split`."""
    return arm_position(experiment_id=experiment_id, ticket_id=ticket_id) < split


@dataclass(frozen=True, kw_only=True)
class ZTest:
    """A two-sided two-proportion z-test of p1 = p2 (pooled standard error)."""

    p1: float
    p2: float
    difference: float  # p2 - p1
    z: float
    p_value: float

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha


def two_proportion_z_test(*, successes1: int, n1: int, successes2: int, n2: int) -> ZTest:
    """z = (p2 - p1) / sqrt(p(1-p)(1/n1 + 1/n2)) with p the pooled proportion; two-sided p.

    With no variation at all (pooled p of 0 or 1) the arms cannot differ: z 0, p-value 1.
    """
    if n1 <= 0 or n2 <= 0:
        raise ValueError("both samples need at least one observation")
    if not (0 <= successes1 <= n1 and 0 <= successes2 <= n2):
        raise ValueError("successes must lie between 0 and n")
    p1, p2 = successes1 / n1, successes2 / n2
    pooled = (successes1 + successes2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return ZTest(p1=p1, p2=p2, difference=p2 - p1, z=0.0, p_value=1.0)
    z = (p2 - p1) / se
    # Two-sided tail: 2 * (1 - Phi(|z|)) = erfc(|z| / sqrt 2).
    return ZTest(p1=p1, p2=p2, difference=p2 - p1, z=z, p_value=math.erfc(abs(z) / math.sqrt(2)))


def two_proportion_sample_size(
    *,
    p1: float,
    p2: float,
    alpha: float = 0.05,
    power: float = 0.8,
    continuity_correction: bool = False,
) -> float | None:
    """Observations per arm for a two-sided test at `alpha` to detect p1 vs p2 with `power`
    (unrounded: round up for a sample to collect).

    n = (z_{1-a/2} sqrt(2 pbar qbar) + z_{1-b} sqrt(p1 q1 + p2 q2))^2 / (p1 - p2)^2, pbar the
    mean of p1 and p2 (Fleiss, Statistical Methods for Rates and Proportions); with
    `continuity_correction`, n' = n/4 (1 + sqrt(1 + 4 / (n |p1 - p2|)))^2.
    None when p1 == p2: no sample is large enough to detect no difference.
    """
    if not (0 <= p1 <= 1 and 0 <= p2 <= 1):
        raise ValueError("proportions must lie between 0 and 1")
    delta = abs(p1 - p2)
    if delta == 0:
        return None
    z_alpha = _NORMAL.inv_cdf(1 - alpha / 2)
    z_beta = _NORMAL.inv_cdf(power)
    p_bar = (p1 + p2) / 2
    root = z_alpha * math.sqrt(2 * p_bar * (1 - p_bar)) + z_beta * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2)
    )
    n = root**2 / delta**2
    if continuity_correction:
        n = n / 4 * (1 + math.sqrt(1 + 4 / (n * delta))) ** 2
    return n


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank `q` quantile of `values` (as evaluate_router reports), None if empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

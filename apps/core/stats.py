"""Interval estimates for the accuracy figures (reviews, audits, prompt versions).

Written here rather than taken from scipy: audits are weighted by how often each tier was
sampled, so the sample size is an effective, non-integer n, which `scipy.stats.binomtest` does
not take.
"""

from math import sqrt

Z_95 = 1.959963984540054


def wilson(p: float, n: float, z: float) -> tuple[float, float]:
    """Wilson score interval for an observed proportion `p` over `n` (n may be an effective,
    non-integer sample size)."""
    if n <= 0:
        return 0.0, 1.0
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * sqrt(max(p * (1 - p), 0.0) / n + z2 / (4 * n * n)) / denominator
    # At p = 0 (or 1) the bound is exactly 0 (or 1); say so rather than leave rounding noise.
    low = 0.0 if p <= 0 else max(0.0, centre - half)
    high = 1.0 if p >= 1 else min(1.0, centre + half)
    return low, high


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval (95% by default) for `successes` out of `n`; (0, 1) for n=0."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    return wilson(successes / n, n, z)

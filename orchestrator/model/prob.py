"""Binomial sums for the random parts of the model (hash seeds decide where keys land).

Closed forms and windowed sums in log space: no SciPy, and fast for n up to 10^12.
"""

from __future__ import annotations

import math
from collections.abc import Callable

#: Sum the pmf over mean ± WINDOW_SIGMAS standard deviations (the rest is < 1e-30).
WINDOW_SIGMAS = 12.0


def _window(n: int, p: float) -> tuple[int, int]:
    mean = n * p
    sd = math.sqrt(max(n * p * (1 - p), 0.0))
    span = WINDOW_SIGMAS * sd + 30
    return max(0, math.floor(mean - span)), min(n, math.ceil(mean + span))


def _log_pmf(n: int, p: float, k: int) -> float:
    if p <= 0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1:
        return 0.0 if k == n else -math.inf
    return (
        math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        + k * math.log(p) + (n - k) * math.log1p(-p)
    )  # fmt: skip


def expect(n: int, p: float, g: Callable[[int], float], *, k_max: int | None = None) -> float:
    """E[g(X)] for X ~ Binomial(n, p); with ``k_max``, g is taken as 0 above it."""
    if n <= 0 or p <= 0:
        return g(0)
    if p >= 1:
        return g(n) if k_max is None or n <= k_max else 0.0
    lo, hi = _window(n, p)
    if k_max is not None:
        hi = min(hi, k_max)
    total = 0.0
    for k in range(lo, hi + 1):
        lp = _log_pmf(n, p, k)
        if lp > -745:
            total += math.exp(lp) * g(k)
    return total


def tail_ge(n: int, p: float, k: int) -> float:
    """P(X ≥ k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    if k == 1:
        return -math.expm1(n * math.log1p(-p))
    if k == 2:
        p0 = math.exp(n * math.log1p(-p))
        p1 = n * p * math.exp((n - 1) * math.log1p(-p))
        return max(0.0, 1.0 - p0 - p1) if p0 + p1 < 0.999 else -math.expm1(n * math.log1p(-p)) - p1
    lo, hi = _window(n, p)
    if k <= lo:
        # Sum the lower tail instead and subtract.
        below = sum(math.exp(_log_pmf(n, p, j)) for j in range(lo, k))
        return max(0.0, 1.0 - below)
    if k > hi:
        return 0.0
    return min(1.0, sum(math.exp(_log_pmf(n, p, j)) for j in range(k, hi + 1)))

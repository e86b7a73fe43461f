"""The regularized lower incomplete gamma function P(s, y), in logarithms so tiny values do not underflow."""

from __future__ import annotations

import functools
import math
from typing import Final

_EPS: Final = 1e-16
_TINY: Final = 1e-300
_MAX_TERMS: Final = 1_000_000


def log_gamma_p_uncached(s: float, y: float) -> float:
    """Return log P(s, y), P(s, y) = γ(s, y) / Γ(s), the regularized lower incomplete gamma function.

    The series is used below ``y = s + 1`` and Lentz's continued fraction for Q = 1 − P above it
    (Numerical Recipes, §6.2); both converge in O(√s) terms, so large ``s`` (many agents) is cheap.
    :func:`log_gamma_p` is the same function keeping its recent answers; this one is for values
    asked once (the steps of a search), which would only push those out.

    Args:
        s: shape, > 0.
        y: argument, ≥ 0.

    Returns:
        log P(s, y); ``-inf`` when ``y`` is 0.

    Raises:
        ValueError: ``s`` ≤ 0 or ``y`` < 0.
    """
    if not (s > 0 and y >= 0):  # (not: a NaN fails too)
        raise ValueError(f"log_gamma_p({s}, {y}): needs s > 0 and y ≥ 0")
    if y == 0:
        return -math.inf
    # Constants bound locally, their negatives too: the loops below are the forecast's innermost
    # ones.
    eps, tiny, neg_eps, neg_tiny = _EPS, _TINY, -_EPS, -_TINY
    # log of e^{-y} y^s / Γ(s), the factor both expansions share.
    log_front = -y + s * math.log(y) - math.lgamma(s)
    if y < s + 1.0:
        term = total = 1.0 / s
        denominator = s
        for _ in range(_MAX_TERMS):
            denominator += 1.0
            term *= y / denominator
            total += term
            if term < total * eps:
                return log_front + math.log(total)
        raise ArithmeticError(f"log_gamma_p({s}, {y}): series did not converge")
    # Continued fraction for Q(s, y) (modified Lentz).
    b = y + 1.0 - s
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_TERMS):
        an = -i * (i - s)
        b += 2.0
        d = an * d + b
        if neg_tiny < d < tiny:
            d = tiny
        c = b + an / c
        if neg_tiny < c < tiny:
            c = tiny
        d = 1.0 / d
        delta = d * c
        h *= delta
        if neg_eps < delta - 1.0 < eps:
            q = math.exp(log_front) * h
            return math.log1p(-q) if q < 1.0 else -math.inf
    raise ArithmeticError(f"log_gamma_p({s}, {y}): continued fraction did not converge")


# A forecast asks for the same values again and again (the queue's share at one number of agents is
# read by every figure and every step of a search for the agents needed): each is worked out once.
log_gamma_p = functools.lru_cache(maxsize=8192)(log_gamma_p_uncached)
"""log P(s, y) (see :func:`log_gamma_p_uncached`), keeping its 8,192 most recent answers."""

"""The regularized lower incomplete gamma function P(s, y), in logarithms so tiny values do not underflow."""

from __future__ import annotations

import functools
import math

_EPS = 1e-16
_TINY = 1e-300
_MAX_TERMS = 1_000_000


# A forecast asks for the same values again and again (the queue's share at one number of agents is
# read by every figure and every step of a search for a wait): each is worked out once.
@functools.lru_cache(maxsize=8192)
def log_gamma_p(s: float, y: float) -> float:
    """Return log P(s, y), P(s, y) = γ(s, y) / Γ(s), the regularized lower incomplete gamma function.

    The series is used below ``y = s + 1`` and Lentz's continued fraction for Q = 1 − P above it
    (Numerical Recipes, §6.2); both converge in O(√s) terms, so large ``s`` (many agents) is cheap.

    Args:
        s: shape, > 0.
        y: argument, ≥ 0.

    Returns:
        log P(s, y); ``-inf`` when ``y`` is 0.

    Raises:
        ValueError: ``s`` ≤ 0 or ``y`` < 0.
    """
    if s <= 0 or y < 0 or math.isnan(s) or math.isnan(y):
        raise ValueError(f"log_gamma_p({s}, {y}): needs s > 0 and y ≥ 0")
    if y == 0:
        return -math.inf
    # log of e^{-y} y^s / Γ(s), the factor both expansions share.
    log_front = -y + s * math.log(y) - math.lgamma(s)
    if y < s + 1.0:
        term = total = 1.0 / s
        denominator = s
        for _ in range(_MAX_TERMS):
            denominator += 1.0
            term *= y / denominator
            total += term
            if term < total * _EPS:
                return log_front + math.log(total)
        raise ArithmeticError(f"log_gamma_p({s}, {y}): series did not converge")
    # Continued fraction for Q(s, y) (modified Lentz).
    b = y + 1.0 - s
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_TERMS):
        an = -i * (i - s)
        b += 2.0
        d = an * d + b
        if abs(d) < _TINY:
            d = _TINY
        c = b + an / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            q = math.exp(log_front) * h
            return math.log1p(-q) if q < 1.0 else -math.inf
    raise ArithmeticError(f"log_gamma_p({s}, {y}): continued fraction did not converge")

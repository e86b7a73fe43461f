"""An independent reference for Erlang A: the M/M/N+M birth–death chain solved numerically, truncated.

Nothing here comes from cxmon.forecast. The stationary distribution is found by detailed balance
(π_{n+1}·death(n+1) = π_n·λ) up to a state past which the mass is negligible; a tagged arrival's
fate is then followed through the queue as a small absorbing chain: first-step analysis for whether
and how long it waits, uniformization for whether it is answered within the target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EPS = 1e-15


@dataclass(frozen=True)
class Reference:
    """The figures, every share of all arrivals."""

    p_wait: float
    p_abandon: float
    service_level: float
    asa: float
    occupancy: float
    wait_beyond: float
    """P(wait > the target): still in queue, neither answered nor gone."""


def stationary(lam: float, mu: float, theta: float, agents: int) -> list[float]:
    """Stationary probabilities of the number in system, truncated where the tail is below EPS."""
    weights = [1.0]
    n = 0
    while True:
        death = min(n + 1, agents) * mu + max(n + 1 - agents, 0) * theta
        weights.append(weights[-1] * lam / death)
        n += 1
        # Rescale as we go so nothing overflows at large N.
        if weights[-1] > 1e200:
            weights = [w / 1e200 for w in weights]
        if n > agents and weights[-1] < EPS * sum(weights) and death > lam:
            break
    total = sum(weights)
    return [w / total for w in weights]


def answered_within(ahead: int, agents: int, mu: float, theta: float, target: float) -> tuple[float, float]:
    """P(a tagged contact with ``ahead`` contacts before it is answered within ``target``), and
    P(it is still in queue at ``target``).

    The chain: i = contacts ahead (ahead … 0), then "answered" or "abandoned". From i it moves on at
    rate Nμ + iθ (an agent frees up, or someone ahead gives up) and abandons at rate θ. Solved by
    uniformization: Poisson-weighted steps of the embedded discrete chain.
    """
    rate = agents * mu + (ahead + 1) * theta
    probs = [0.0] * (ahead + 1)  # index i: i ahead
    probs[ahead] = 1.0
    answered = 0.0
    poisson = math.exp(-rate * target)
    result = poisson * answered
    waiting = poisson
    k = 0
    while True:
        k += 1
        moved = [0.0] * (ahead + 1)
        for i, p in enumerate(probs):
            if p == 0.0:
                continue
            on = (agents * mu + i * theta) / rate
            out = theta / rate
            stay = 1.0 - on - out
            moved[i] += p * stay
            if i == 0:
                answered += p * on
            else:
                moved[i - 1] += p * on
        probs = moved
        poisson *= rate * target / k
        result += poisson * answered
        waiting += poisson * sum(probs)
        if k > rate * target and poisson < 1e-18:
            return result, waiting


def answered_wait(ahead: int, agents: int, mu: float, theta: float) -> tuple[float, float]:
    """(P(answered), E[wait · 1{answered}]) for a tagged contact with ``ahead`` before it, by
    first-step analysis from the head of the queue backwards."""
    p, m = 1.0, 0.0  # "one step past the head": answered at once, no more wait
    for i in range(ahead + 1):
        on = agents * mu + i * theta
        total = on + theta
        # The sojourn here lasts 1/total on average whichever way it ends.
        p, m = on / total * p, on / total * (p / total + m)
    return p, m


def reference(lam: float, aht: float, patience: float, agents: int, target: float) -> Reference:
    """The Erlang A figures by brute force."""
    mu, theta = 1.0 / aht, 1.0 / patience
    pi = stationary(lam, mu, theta, agents)
    p_wait = sum(pi[agents:])
    queue_mean = sum((n - agents) * p for n, p in enumerate(pi) if n > agents)
    p_abandon = theta * queue_mean / lam
    sl = sum(pi[:agents])
    answered = sum(pi[:agents])
    wait_answered = 0.0
    beyond = 0.0
    for j, p in enumerate(pi[agents:]):
        if p < EPS:
            continue
        within, waiting = answered_within(j, agents, mu, theta, target)
        sl += p * within
        beyond += p * waiting
        pa, m = answered_wait(j, agents, mu, theta)
        answered += p * pa
        wait_answered += p * m
    busy = sum(min(n, agents) * p for n, p in enumerate(pi))
    return Reference(p_wait, p_abandon, sl, wait_answered / answered, busy / agents, beyond)

"""The contact-centre model: a discrete-event simulation (heapq) that yields ContactEvents in time order."""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Iterator
from typing import cast

from collectors.simulator.options import IncidentSpec, QueueSpec, SimOptions
from cxmon.events import ContactEvent, EventKind

WARMUP = 1200.0
"""Seconds simulated before ``start`` without emitting anything, so queues open busy, not empty."""
HEARTBEAT_EVERY = 10.0
STAFFING_EVERY = 60.0
PROFILE_PERIOD = 3600.0
"""Period of the arrival-rate sinusoid (seconds)."""
SURVEY_CHANNEL = "survey"
SURVEY_DELAY_MEAN = 60.0
"""Mean delay between the end of a call or chat and its survey answer."""
EMAIL_SURVEY_DELAY_MEAN = 1800.0
REOPEN_AFTER_MEAN = 7200.0
"""Mean time from resolution to a reopen, for tickets that are reopened."""
# CSAT model: a latent satisfaction, lowered by waiting, escalations, transfers and reopens, plus noise,
# rounded to 1–5. Waits are scaled per channel: 40 s on hold costs a point, as do four hours waiting
# for an email reply. Customers who waited long answer the survey more often.
CSAT_BASE = 4.6
CSAT_NOISE = 0.6
CSAT_WAIT_SCALE = 40.0
CSAT_EMAIL_WAIT_SCALE = 4 * 3600.0
CSAT_WAIT_PENALTY_MAX = 2.5
CSAT_ESCALATION_PENALTY = 0.2
CSAT_TRANSFER_PENALTY = 0.3
CSAT_REOPEN_PENALTY = 0.8

# Heap actions. Ties at the same instant run in scheduling order (a sequence number breaks them).
_ARRIVAL = 0
_ABANDON = 1
_END = 2
_RESOLVE = 3
_REOPEN = 4
_FEEDBACK = 5
_INCIDENT_START = 6
_INCIDENT_END = 7
_STAFFING = 8
_HEARTBEAT = 9

_ARRIVED = EventKind.ARRIVED
_ANSWERED = EventKind.ANSWERED
_ABANDONED = EventKind.ABANDONED
_RESOLVED = EventKind.RESOLVED
_ESCALATED = EventKind.ESCALATED
_TRANSFERRED = EventKind.TRANSFERRED
_REOPENED = EventKind.REOPENED
_FEEDBACK_KIND = EventKind.FEEDBACK
_STAFFING_KIND = EventKind.STAFFING
_HEARTBEAT_KIND = EventKind.HEARTBEAT


class _Queue:
    """Live state of one queue and its agent pool."""

    __slots__ = (
        "active",
        "agents",
        "amp",
        "busy",
        "channel",
        "email",
        "escalate",
        "escalate_to",
        "factor",
        "feedback",
        "handle",
        "lam_max",
        "logged_in",
        "name",
        "nwait",
        "patience_rate",
        "prefix",
        "rate",
        "reopen",
        "resolution_rate",
        "spec",
        "staffed",
        "transfer",
        "transfer_to",
        "waiting",
    )

    def __init__(self, spec: QueueSpec, rng: random.Random, incidents: list[IncidentSpec]) -> None:
        self.spec = spec
        self.name = spec.name
        self.channel = spec.channel
        self.email = spec.is_email
        self.agents = spec.agents
        self.staffed = spec.agents
        """Agents meant to be logged in now (incidents change it)."""
        self.logged_in = spec.agents
        """Agents actually logged in: those told to leave finish their contact first."""
        self.busy = 0
        self.waiting: deque[_Contact] = deque()
        """FIFO of waiting contacts; abandoned ones stay in it and are skipped when reached."""
        self.nwait = 0
        self.rate = spec.arrivals_per_hour / 3600.0
        self.amp = spec.profile_amplitude
        surge = max([1.0, *(i.arrivals_factor for i in incidents if i.queue == spec.name)])
        self.lam_max = self.rate * (1.0 + self.amp) * surge
        self.factor = 1.0
        self.active: list[IncidentSpec] = []
        self.patience_rate = 1.0 / spec.patience_mean if spec.patience_mean else 0.0
        self.escalate = spec.escalate
        self.transfer = spec.escalate + spec.transfer
        """Cumulative: a draw below ``escalate`` escalates, below this transfers."""
        self.escalate_to: _Queue | None = None
        self.transfer_to: _Queue | None = None
        self.feedback = spec.feedback
        self.reopen = spec.reopen
        self.resolution_rate = 1.0 / spec.resolution_mean
        self.prefix = {"voice": "V", "chat": "T", "email": "E"}.get(spec.channel, spec.channel[:1].upper())
        self.handle = _handle_sampler(spec, rng)


def _handle_sampler(spec: QueueSpec, rng: random.Random) -> Callable[[], float]:
    if spec.handle_dist == "exponential":
        rate = 1.0 / spec.handle_mean
        expo = rng.expovariate
        return lambda: expo(rate)
    sigma = spec.handle_sigma
    mu = math.log(spec.handle_mean) - sigma * sigma / 2.0
    lognorm = rng.lognormvariate
    return lambda: lognorm(mu, sigma)


class _Contact:
    """One contact, possibly crossing several queues (escalations, transfers)."""

    __slots__ = (
        "cid",
        "customer",
        "deadline",
        "escalations",
        "first_arrival",
        "q",
        "reopened",
        "t_answer",
        "t_arrival",
        "t_reopen",
        "transfers",
        "visible",
        "wait_total",
        "waiting",
    )

    def __init__(self, cid: str, customer: str, q: _Queue, t: float, visible: bool) -> None:
        self.cid = cid
        self.customer = customer
        self.q = q
        self.first_arrival = t
        self.t_arrival = t
        self.t_answer = t
        self.t_reopen = t
        self.deadline = -1.0
        self.waiting = False
        self.visible = visible
        self.wait_total = 0.0
        self.escalations = 0
        self.transfers = 0
        self.reopened = False


def _take_next(q: _Queue, t: float) -> _Contact | None:
    """A free agent of ``q`` takes the longest-waiting contact still in queue (None when nobody waits)."""
    while q.nwait:
        w = q.waiting.popleft()
        if w.waiting:
            w.waiting = False
            q.nwait -= 1
            q.busy += 1
            w.t_answer = t
            if not q.email:
                w.wait_total += t - w.t_arrival
            return w
    return None


def simulate_events(
    options: SimOptions,
    start: float,
    until: float | None = None,
    *,
    source: str = "sim",
    incidents: bool | None = None,
) -> Iterator[ContactEvent]:
    """Yield the events of a simulated contact centre in time order.

    Deterministic: the same options (seed included), ``start`` and ``until`` give the same events.

    Args:
        options: validated simulator options.
        start: epoch seconds of the first event; the model runs a hidden warm-up before it.
        until: stop after this epoch time (None: never stop).
        source: collector name put into every event.
        incidents: run the scripted incidents (None: as ``options.incidents_enabled`` says).

    Returns:
        An iterator of events with non-decreasing ``ts``.
    """
    rng = random.Random(options.seed)
    rand = rng.random
    expo = rng.expovariate
    gauss = rng.gauss
    push = heapq.heappush
    pop = heapq.heappop
    run_incidents = options.incidents_enabled if incidents is None else incidents
    scripted = list(options.incidents) if run_incidents else []

    queues = {spec.name: _Queue(spec, rng, scripted) for spec in options.queues}
    for q in queues.values():
        if q.spec.escalate_to:
            q.escalate_to = queues[q.spec.escalate_to]
        if q.spec.transfer_to:
            q.transfer_to = queues[q.spec.transfer_to]
    n_customers = options.customers
    width = len(str(n_customers - 1))
    customer_ids = [f"C{i:0{width}d}" for i in range(n_customers)]
    omega = 2.0 * math.pi / PROFILE_PERIOD
    sin = math.sin

    heap: list[tuple[float, int, int, object]] = []
    seq = 0
    t0 = start - WARMUP
    for q in queues.values():
        if q.lam_max > 0:
            push(heap, (t0 + expo(q.lam_max), seq, _ARRIVAL, q))
            seq += 1
    for inc in scripted:
        push(heap, (start + inc.at, seq, _INCIDENT_START, inc))
        push(heap, (start + inc.at + inc.duration, seq + 1, _INCIDENT_END, inc))
        seq += 2
    push(heap, (start, seq, _STAFFING, None))
    push(heap, (start, seq + 1, _HEARTBEAT, None))
    seq += 2
    counter = 0
    stop = math.inf if until is None else until
    CE = ContactEvent

    def staffing(q: _Queue, t: float) -> ContactEvent:
        return CE(
            t,
            _STAFFING_KIND,
            "",
            q.channel,
            q.name,
            source,
            None,
            None,
            None,
            None,
            None,
            None,
            q.logged_in,
            max(0, q.staffed - q.busy),
        )

    while heap:
        t, _, action, obj = pop(heap)
        if t > stop:
            return

        if action == _ARRIVAL:
            q = obj  # type: ignore[assignment]
            push(heap, (t + expo(q.lam_max), seq, _ARRIVAL, q))
            seq += 1
            if rand() * q.lam_max >= q.rate * (1.0 + q.amp * sin(omega * (t - start))) * q.factor:
                continue  # thinning: a non-homogeneous Poisson process from a homogeneous one
            counter += 1
            c = _Contact(
                f"{q.prefix}{counter:07d}", customer_ids[int(n_customers * rand() ** 2)], q, t, t >= start
            )
            # falls through to "enter queue q" below
        elif action == _END:
            c = obj  # type: ignore[assignment]
            q = c.q
            q.busy -= 1
            vis = c.visible
            if q.email:
                wait = t - c.t_arrival
                c.wait_total += wait
                if vis:
                    yield CE(t, _ANSWERED, c.cid, q.channel, q.name, source, c.customer, wait)
                push(heap, (t + expo(q.resolution_rate), seq, _RESOLVE, c))
                seq += 1
                nxt = None
            else:
                u = rand()
                if u < q.transfer:
                    if u < q.escalate:
                        nxt = q.escalate_to
                        c.escalations += 1
                        kind = _ESCALATED
                    else:
                        nxt = q.transfer_to
                        c.transfers += 1
                        kind = _TRANSFERRED
                    # Validation guarantees a target queue whenever the chance is above 0.
                    target = cast(_Queue, nxt).name
                    if vis:
                        yield CE(t, kind, c.cid, q.channel, q.name, source, c.customer, None, None, target,
                                 None, target)  # fmt: skip
                else:
                    nxt = None
                    if vis:
                        yield CE(
                            t, _RESOLVED, c.cid, q.channel, q.name, source, c.customer, None, t - c.t_answer
                        )
                    # Unhappy customers answer surveys more often than content ones.
                    if q.feedback and rand() < q.feedback * (1.0 + c.wait_total / CSAT_WAIT_SCALE):
                        push(heap, (t + expo(1.0 / SURVEY_DELAY_MEAN), seq, _FEEDBACK, c))
                        seq += 1
            # The freed agent takes the next waiting contact, or logs off if an incident sent them away.
            if q.busy >= q.staffed:
                if q.logged_in > q.staffed:
                    q.logged_in = max(q.staffed, q.busy)
                    if t >= start:
                        yield staffing(q, t)
            else:
                w = _take_next(q, t)
                if w is not None:
                    if not q.email and w.visible:
                        yield CE(t, _ANSWERED, w.cid, q.channel, q.name, source, w.customer, t - w.t_arrival)
                    push(heap, (t + q.handle(), seq, _END, w))
                    seq += 1
            if nxt is None:
                continue
            q = nxt
            c.q = q
            c.t_arrival = t
            # falls through to "enter queue q"
        elif action == _ABANDON:
            c = obj  # type: ignore[assignment]
            if c.waiting and c.deadline == t:
                c.waiting = False
                q = c.q
                q.nwait -= 1
                if c.visible:
                    yield CE(
                        t,
                        _ABANDONED,
                        c.cid,
                        q.channel,
                        q.name,
                        source,
                        c.customer,
                        t - c.t_arrival,
                        None,
                        "hangup",
                    )
            continue
        elif action == _FEEDBACK:
            c = obj  # type: ignore[assignment]
            if c.visible:
                q = c.q
                penalty = c.wait_total / (CSAT_EMAIL_WAIT_SCALE if q.email else CSAT_WAIT_SCALE)
                latent = (
                    CSAT_BASE
                    - min(penalty, CSAT_WAIT_PENALTY_MAX)
                    - CSAT_ESCALATION_PENALTY * c.escalations
                    - CSAT_TRANSFER_PENALTY * c.transfers
                    - (CSAT_REOPEN_PENALTY if c.reopened else 0.0)
                    + gauss(0.0, CSAT_NOISE)
                )
                score = float(min(5, max(1, math.floor(latent + 0.5))))
                yield CE(
                    t,
                    _FEEDBACK_KIND,
                    c.cid,
                    SURVEY_CHANNEL,
                    q.name,
                    source,
                    c.customer,
                    None,
                    None,
                    None,
                    score,
                )
            continue
        elif action == _RESOLVE:
            c = obj  # type: ignore[assignment]
            q = c.q
            if c.visible:
                since = c.t_reopen if c.reopened else c.first_arrival
                yield CE(t, _RESOLVED, c.cid, q.channel, q.name, source, c.customer, None, t - since)
            if not c.reopened and q.reopen and rand() < q.reopen:
                push(heap, (t + expo(1.0 / REOPEN_AFTER_MEAN), seq, _REOPEN, c))
                seq += 1
            elif q.feedback and rand() < q.feedback * (1.0 + c.wait_total / CSAT_EMAIL_WAIT_SCALE):
                push(heap, (t + expo(1.0 / EMAIL_SURVEY_DELAY_MEAN), seq, _FEEDBACK, c))
                seq += 1
            continue
        elif action == _REOPEN:
            c = obj  # type: ignore[assignment]
            q = c.q
            c.reopened = True
            c.t_reopen = t
            if c.visible:
                yield CE(t, _REOPENED, c.cid, q.channel, q.name, source, c.customer)
            push(heap, (t + expo(2.0 * q.resolution_rate), seq, _RESOLVE, c))
            seq += 1
            continue
        elif action == _HEARTBEAT:
            yield CE(t, _HEARTBEAT_KIND, "", "", "", source)
            push(heap, (t + HEARTBEAT_EVERY, seq, _HEARTBEAT, None))
            seq += 1
            continue
        elif action == _STAFFING:
            for q in queues.values():
                yield staffing(q, t)
            push(heap, (t + STAFFING_EVERY, seq, _STAFFING, None))
            seq += 1
            continue
        else:  # incident start or end
            incident: IncidentSpec = obj  # type: ignore[assignment]
            q = queues[incident.queue]
            if action == _INCIDENT_START:
                q.active.append(incident)
            else:
                q.active.remove(incident)
            agents_factor = 1.0
            q.factor = 1.0
            for active in q.active:
                agents_factor *= active.agents_factor
                q.factor *= active.arrivals_factor
            q.staffed = int(q.agents * agents_factor + 0.5)
            q.logged_in = max(q.staffed, q.busy)
            # Agents log in (or are told to leave) first; returning agents then take waiting contacts.
            yield staffing(q, t)
            while q.busy < q.staffed:
                w = _take_next(q, t)
                if w is None:
                    break
                if not q.email and w.visible:
                    yield CE(t, _ANSWERED, w.cid, q.channel, q.name, source, w.customer, t - w.t_arrival)
                push(heap, (t + q.handle(), seq, _END, w))
                seq += 1
            continue

        # ---- contact c enters queue q at t (a new arrival, an escalation or a transfer)
        if c.visible:
            yield CE(t, _ARRIVED, c.cid, q.channel, q.name, source, c.customer)
        if q.busy < q.staffed and not q.nwait:
            q.busy += 1
            c.t_answer = t
            if not q.email and c.visible:
                yield CE(t, _ANSWERED, c.cid, q.channel, q.name, source, c.customer, 0.0)
            push(heap, (t + q.handle(), seq, _END, c))
            seq += 1
        else:
            c.waiting = True
            q.waiting.append(c)
            q.nwait += 1
            if q.patience_rate:
                c.deadline = t + expo(q.patience_rate)
                push(heap, (c.deadline, seq, _ABANDON, c))
                seq += 1

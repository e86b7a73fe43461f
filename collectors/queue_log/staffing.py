"""Queue members, their pauses and calls, and the staffed/available figures per queue that follow."""

from __future__ import annotations

from collections.abc import Callable

from collectors.queue_log.lines import NO_QUEUE


class Staffing:
    """The members of each queue and which of them are free, kept up to date line by line.

    A member is available in a queue when it is not paused there and not on a call (in any
    queue). Whenever a queue's (staffed, available) figures differ from the last ones reported,
    ``report(ts, queue, staffed, available)`` is called.
    """

    def __init__(self, report: Callable[[float, str, int, int], None]) -> None:
        """Build empty tables.

        Args:
            report: called with (ts, queue, staffed, available) when a queue's figures change.
        """
        self.report = report
        self.members: dict[str, dict[str, bool]] = {}
        """queue → agent → paused."""
        self.agent_queues: dict[str, set[str]] = {}
        """agent → the queues it is a member of (each has an entry in ``members``)."""
        self.busy: set[str] = set()
        """Agents on a call."""
        self.available: dict[str, int] = {}
        """queue → members neither paused nor on a call (kept up to date, never recounted)."""
        self.reported: dict[str, tuple[int, int]] = {}
        """queue → (staffed, available) last reported."""

    def member(self, ts: float, verb: str, queue: str, agent: str) -> None:
        """Apply a member verb (collectors.queue_log.verbs.MEMBER) of ``agent`` in ``queue``.

        Args:
            ts: the line's time, put on the figures it changes.
            verb: ADDMEMBER, PAUSE, …; a PAUSEALL or UNPAUSEALL, or a verb without a queue,
                applies to every queue the agent is a member of.
            queue: the queue named on the line.
            agent: the member interface; none (empty or ``NONE``) leaves everything as it is.
        """
        if not agent or agent == "NONE":
            return
        queues: list[str]
        if queue in NO_QUEUE or verb in ("PAUSEALL", "UNPAUSEALL"):
            queues = sorted(self.agent_queues.get(agent, ()))
        else:
            queues = [queue]
        free = agent not in self.busy
        for q in queues:
            members = self.members.setdefault(q, {})
            was = members.get(agent)
            if verb in ("ADDMEMBER", "AGENTLOGIN", "AGENTCALLBACKLOGIN"):
                members[agent] = members.get(agent, False)
                self.agent_queues.setdefault(agent, set()).add(q)
            elif verb in ("REMOVEMEMBER", "AGENTLOGOFF", "AGENTCALLBACKLOGOFF"):
                members.pop(agent, None)
                self.agent_queues.get(agent, set()).discard(q)
            else:
                # A pause names a member even when it was configured statically (no ADDMEMBER).
                members[agent] = verb in ("PAUSE", "PAUSEALL")
                self.agent_queues.setdefault(agent, set()).add(q)
            now = members.get(agent)
            if free:
                before = was is not None and not was
                after = now is not None and not now
                if before != after:
                    self.available[q] = self.available.get(q, 0) + (1 if after else -1)
            self._refigure(ts, q)

    def set_busy(self, agent: str, busy: bool, ts: float) -> None:
        """Put ``agent`` on a call (``busy``) or take it off one.

        Args:
            agent: the member interface; none (empty or ``NONE``) leaves everything as it is.
            busy: on a call from now on, or not.
            ts: the time put on the figures it changes.
        """
        if not agent or agent == "NONE":
            return
        busy_agents = self.busy
        if busy:
            if agent in busy_agents:
                return
            busy_agents.add(agent)
        elif agent in busy_agents:
            busy_agents.remove(agent)
        else:
            return
        queues = self.agent_queues.get(agent)
        if not queues:
            return
        step = -1 if busy else 1
        members = self.members
        available = self.available
        reported = self.reported
        for q in sorted(queues) if len(queues) > 1 else queues:
            in_q = members[q]
            if in_q.get(agent) is False:  # a member of q, not paused
                available[q] = available.get(q, 0) + step
            # _refigure inlined: this runs for most CONNECT and COMPLETE* lines.
            staffed = len(in_q)
            free = available.get(q, 0)
            figures = (staffed, free)
            if reported.get(q) != figures:
                reported[q] = figures
                self.report(ts, q, staffed, free)

    def all_free(self, ts: float) -> None:
        """Take every agent off its call (Asterisk restarted: no call survived)."""
        busy = self.busy
        self.busy = set()
        touched: set[str] = set()
        for agent in busy:
            for q in self.agent_queues.get(agent, ()):
                touched.add(q)
                paused = self.members.get(q, {}).get(agent)
                if paused is not None and not paused:
                    self.available[q] = self.available.get(q, 0) + 1
        # Sorted, so the same log gives its staffing events in the same order in every process
        # (set order follows the interpreter's string hash seed).
        for q in sorted(touched):
            self._refigure(ts, q)

    def _refigure(self, ts: float, queue: str) -> None:
        members = self.members.get(queue)
        figures = (len(members) if members else 0, self.available.get(queue, 0))
        if self.reported.get(queue) == figures:
            return
        self.reported[queue] = figures
        self.report(ts, queue, *figures)

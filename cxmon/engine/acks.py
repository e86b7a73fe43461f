"""Acknowledgements: who acknowledged a step's pot hole and until when (they silence repeat alerts)."""

from __future__ import annotations

from collections.abc import Iterator

from cxmon.snapshot import Ack

DEFAULT_ACK = 4 * 3600.0
"""How long an acknowledgement lasts when it does not say."""
MAX_ACK = 7 * 86400.0
"""The longest an acknowledgement may last: it silences a step's alerts, and every dashboard shows its end."""


class Acknowledgements:
    """The current acknowledgement of each step (at most one)."""

    def __init__(self) -> None:
        self._by_step: dict[str, Ack] = {}

    def add(self, step: str, who: str, note: str, now: float, until: float | None = None) -> Ack:
        """Acknowledge ``step`` at engine time ``now`` until ``until`` (default: ``DEFAULT_ACK`` on).

        Raises:
            ValueError: ``until`` is not after ``now``, or more than ``MAX_ACK`` after it.
        """
        if until is not None and not now < until <= now + MAX_ACK:
            raise ValueError(f"expected a time after now and at most {MAX_ACK / 86400:g} days on")
        ack = Ack(
            step=step, who=who, note=note, ts=now, until=until if until is not None else now + DEFAULT_ACK
        )
        self._by_step[step] = ack
        return ack

    def restore(self, ack: Ack) -> None:
        """Take up ``ack`` again as it was made (a restart: see :mod:`cxmon.engine.warm`)."""
        self._by_step[ack.step] = ack

    def get(self, step: str) -> Ack | None:
        """The acknowledgement of ``step``, if any (expired or not)."""
        return self._by_step.get(step)

    def current(self, step: str, now: float) -> Ack | None:
        """The acknowledgement of ``step`` still in force at ``now``; an expired one is dropped."""
        ack = self._by_step.get(step)
        if ack is not None and ack.until <= now:
            del self._by_step[step]
            return None
        return ack

    def pop(self, step: str, default: Ack | None = None) -> Ack | None:
        """Drop the acknowledgement of ``step`` (its pot hole is over); return it, or ``default``."""
        return self._by_step.pop(step, default)

    def __getitem__(self, step: str) -> Ack:
        return self._by_step[step]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_step)

    def __len__(self) -> int:
        return len(self._by_step)

    def all(self) -> tuple[Ack, ...]:
        """Every acknowledgement, in the order they were made."""
        return tuple(self._by_step.values())

"""ExpiringSet: ids remembered until a deadline, bounded in size (delivery ids, event ids)."""

from __future__ import annotations

from collections import OrderedDict


class ExpiringSet:
    """Ids with an expiry time; expired ids are forgotten, and the oldest go first when full.

    Deadlines are kept in insertion order, which is close to deadline order (every id of one set
    is kept for the same length of time), so forgetting is a walk from the front.
    """

    def __init__(self, limit: int) -> None:
        """Create an empty set holding at most ``limit`` ids."""
        self.limit = limit
        self._until: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._until)

    def seen(self, key: str, now: float) -> bool:
        """Return whether ``key`` is remembered and not yet expired at ``now``."""
        until = self._until.get(key)
        return until is not None and until >= now

    def add(self, key: str, until: float, now: float) -> None:
        """Remember ``key`` until ``until``, forgetting what expired by ``now`` (and the oldest if full)."""
        self._until.pop(key, None)
        self._until[key] = until
        while self._until:
            first, deadline = next(iter(self._until.items()))
            if deadline < now or len(self._until) > self.limit:
                del self._until[first]
            else:
                break

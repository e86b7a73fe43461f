"""Reading TOML tables key by key: every problem recorded with its key path, unknown keys reported.

The config and every source's option parser use these; nothing here knows the config's shape, so a
source can validate its options without importing :mod:`cxmon.config`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from cxmon.units import parse_duration

T = TypeVar("T")


class Problems:
    """The problems found so far, each ``"key.path: why"``."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, msg: str) -> None:
        """Record that the value at ``path`` is wrong, and why."""
        self.items.append(f"{path}: {msg}")


class Section:
    """Reads keys from one table, remembering which were used, so unknown keys can be reported."""

    def __init__(self, data: object, path: str, problems: Problems) -> None:
        """Read ``data`` (anything but a table is recorded as a problem at ``path``)."""
        self.path = path
        self.problems = problems
        if isinstance(data, dict):
            self.data: dict[str, Any] = data
        else:
            problems.add(path, f"expected a table, got {type(data).__name__}")
            self.data = {}
        self.known: list[str] = []

    def key(self, name: str) -> str:
        """Return the key path of ``name`` in this table."""
        return f"{self.path}.{name}" if self.path else name

    def get(
        self,
        name: str,
        conv: Callable[[Any], T],
        default: T,
        expected: str,
        required: bool = False,
    ) -> T:
        """Return ``conv`` of the value at ``name``, or ``default`` when it is absent or wrong.

        Args:
            name: the key.
            conv: converts the value; raises ValueError (or TypeError) when it is not acceptable.
            default: returned when the key is absent or its value is wrong.
            expected: what the value should be, for the problem's message ("a duration like "5m"").
            required: an absent key is a problem too.
        """
        self.known.append(name)
        if name not in self.data:
            if required:
                self.problems.add(self.key(name), "required key is missing")
            return default
        value = self.data[name]
        try:
            result = conv(value)
        except (ValueError, TypeError, OverflowError):
            self.problems.add(self.key(name), f"expected {expected}, got {value!r}")
            return default
        if isinstance(result, float) and not math.isfinite(result):
            # nan and inf pass every comparison a converter makes; no setting means them
            self.problems.add(self.key(name), f"expected {expected}, got {value!r}")
            return default
        return result

    def raw(self, name: str) -> Any:
        """Return the value at ``name`` as it is (None when absent), marking the key as known."""
        self.known.append(name)
        return self.data.get(name)

    def table(self, name: str) -> object:
        """Return the table at ``name``: an absent one is empty; any other value is passed on for
        the :class:`Section` made from it to report."""
        value = self.raw(name)
        return {} if value is None else value

    def finish(self, extra_known: Iterable[str] = ()) -> None:
        """Report every key of the table that was not read (with the nearest known name)."""
        known = [*self.known, *extra_known]
        for name in self.data:
            if name not in known:
                hint = difflib.get_close_matches(name, known, n=1)
                msg = "unknown key" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                self.problems.add(self.key(name), msg)


def string(value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise ValueError(value)
    return value


def optional_string(value: Any) -> str | None:
    """A non-empty string, for a key whose default is None."""
    return string(value)


def http_url(value: Any) -> str | None:
    """An http:// or https:// URL with a host (what the alert sinks can send to)."""
    url = string(value)
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 -- a port that is not a number raises here
    except ValueError:
        raise ValueError(value) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(value)
    return url


def boolean(value: Any) -> bool:
    """true or false (not a number)."""
    if not isinstance(value, bool):
        raise ValueError(value)
    return value


def integer(minimum: int) -> Callable[[Any], int]:
    """A converter for whole numbers ≥ ``minimum`` (not booleans)."""

    def conv(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(value)
        return value

    return conv


def number(value: Any) -> float:
    """A number (not a boolean), as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(value)
    return float(value)


def string_list(value: Any) -> tuple[str, ...]:
    """A list of non-empty strings."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(value)
    return tuple(value)


def positive_duration(value: Any) -> float:
    """A duration above zero ("5m", or seconds), in seconds."""
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(value)
    return seconds


def duration_list(value: Any) -> tuple[float, ...]:
    """A list of durations above zero, in seconds."""
    if not isinstance(value, list):
        raise ValueError(value)
    return tuple(positive_duration(v) for v in value)

"""The Source protocol every collector implements, and the Sink the engine hands it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from cxmon.events import ContactEvent
from cxmon.rows import Row

if TYPE_CHECKING:
    from cxmon.config import CollectorConfig, Config


@dataclass(frozen=True, slots=True)
class Offset:
    """Where a source has read up to: committed in the same transaction as the events before it."""

    file_id: str
    """Identity of what was read (e.g. ``dev:inode`` plus a fingerprint of the first line)."""
    position: int
    """Byte offset after the last complete line taken."""


class Sink(Protocol):
    """What a source talks to. The engine implements it; one per source."""

    async def emit(self, events: Sequence[ContactEvent], offset: Offset | None = None) -> None:
        """Hand over a batch of events (waits when the engine is busy: back-pressure).

        ``offset``, when given, is where the source will resume after a restart once these
        events are stored.
        """

    def error(self, where: str, msg: str) -> None:
        """Report bad input (``where`` is ``file:line`` or a key path); counted, never fatal."""

    def set_up(self, up: bool) -> None:
        """Say whether the source is connected/reading (a dead source must not look healthy)."""

    async def emit_rows(self, rows: Sequence[Row], offset: Offset | None, encoded: bytes) -> None:
        """Hand over a batch already built as rows (:mod:`cxmon.rows`), with ``encoded``, their
        ``marshal.dumps``: what a reader in a child process (:class:`cxmon.ingest.ProcessSource`)
        relays. The engine aggregates the rows as they are and stores ``encoded`` untouched;
        waits like :meth:`emit`.
        """

    async def load_offset(self) -> Offset | None:
        """Return the offset stored for this source, or None on first start."""


@runtime_checkable
class Source(Protocol):
    """A collector. ``run`` returns when a finite source is done and is cancelled on shutdown."""

    name: str
    type: str

    async def run(self, sink: Sink) -> None:
        """Read the source and emit events until done or cancelled."""


@runtime_checkable
class RowSource(Source, Protocol):
    """A source that can build its output with another function than ContactEvent."""

    def make_rows(self, make: Callable[..., Any]) -> None:
        """Build each event with ``make``, which takes ContactEvent's arguments (a reader in a
        child process passes :func:`cxmon.rows.row_maker`'s function and emits rows)."""


class ClockedSource(Source, Protocol):
    """A source that owns the clock (simulator, replay): engine time follows it, not the wall."""

    def clock(self) -> float:
        """Return the source's current time (epoch seconds)."""

    @property
    def paced(self) -> bool:
        """True when the source follows wall time (possibly accelerated), False for as-fast-as-possible."""


SourceFactory = Callable[["CollectorConfig", "Config"], Source]

T = TypeVar("T")


def checked_options(
    parse: Callable[[dict[str, Any], str], tuple[T | None, list[str]]],
    collector: CollectorConfig,
    config: Config,
) -> T:
    """Parse a ``[[collectors]]`` table's options with a source's ``parse_options``.

    Raises:
        ConfigError: listing every problem, each with its key path.
    """
    from cxmon.errors import ConfigError

    options, problems = parse(collector.options, collector.path or collector.name)
    if options is None:
        raise ConfigError(problems, config.source)
    return options

"""Options of the queue_log collector (and the queue → channel table the AMI collector shares)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.queue_log.hours import OpeningHours, parse_hours

# cxmon.validation's section reader reports unknown keys with a did-you-mean and every bad value with
# its key path; collectors follow the same rules, so they reuse it.
from cxmon.validation import Problems, Section, boolean, integer, positive_duration, string, string_list


@dataclass(frozen=True, slots=True)
class QueueLogOptions:
    """A validated ``[[collectors]]`` table of type "queue_log"."""

    path: str
    channels: dict[str, str] = field(default_factory=dict)
    """Queue → channel for queues that are not ``channel``."""
    channel: str = "voice"
    start: str = "end"
    """Where to begin on the very first run: ``end`` (only new lines; the file is still read to
    learn who is waiting and who is logged in) or ``beginning`` (everything is new)."""
    follow: bool = True
    """Keep following the file; False stops at its end (imports)."""
    poll_interval: float = 0.25
    batch: int = 2000
    """Events per emit while catching up."""
    heartbeat: float = 15.0
    """Seconds between heartbeats while the file is quiet and alive, so a quiet queue is not STALE."""
    max_silence: float = 300.0
    """While the centre is open, the file counts as alive only if it grew this recently."""
    hours: OpeningHours = field(default_factory=OpeningHours)
    """When the centre is open (always, unless configured)."""
    rotate_grace: float = 5.0
    """Seconds a file renamed away must be quiet before the tailer moves to the new one."""
    max_skew: float = 300.0
    """Seconds a line's timestamp may lie ahead of the wall clock before the line is refused."""


def queue_channels(sec: Section) -> dict[str, str]:
    """Read ``queues = [{ name = "...", channel = "..." }]`` into queue → channel."""
    out: dict[str, str] = {}
    raw = sec.raw("queues")
    if raw is None:
        return out
    if not isinstance(raw, list):
        sec.problems.add(sec.key("queues"), "expected a list of { name, channel } tables")
        return out
    for i, item in enumerate(raw):
        q = Section(item, f"{sec.key('queues')}[{i}]", sec.problems)
        name = q.get("name", string, "", "a queue name", required=True)
        channel = q.get("channel", string, "voice", "a channel name")
        q.finish()
        if name:
            out[name] = channel
    return out


def resolve_path(path: str, config_source: str | None = None) -> str:
    """Return ``path`` as given when it exists from here, else relative to the config file's folder
    or the folder above it (the checkout, for a config in ``config/``)."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists() or not config_source or config_source.startswith("<"):
        return str(p)
    folder = Path(config_source).resolve().parent
    for base in (folder, folder.parent):
        if (base / p).exists():
            return str(base / p)
    return str(p)


def parse_options(options: dict[str, Any], path: str) -> tuple[QueueLogOptions | None, list[str]]:
    """Validate a queue_log collector table.

    Returns:
        (options, problems): options is None when there are problems.
    """
    problems = Problems()
    sec = Section(options, path, problems)
    file = sec.get("path", string, "", "a file path", required=True)
    channel = sec.get("channel", string, "voice", "a channel name")
    channels = queue_channels(sec)
    start = sec.get("start", string, "end", '"end" or "beginning"')
    if start not in ("end", "beginning"):
        problems.add(sec.key("start"), f'expected "end" or "beginning", got {start!r}')
    follow = sec.get("follow", boolean, True, "true or false")
    poll = sec.get("poll_interval", positive_duration, 0.25, 'a duration like "250ms"')
    batch = sec.get("batch", integer(1), 2000, "a whole number ≥ 1")
    heartbeat = sec.get("heartbeat", positive_duration, 15.0, 'a duration like "15s"')
    silence = sec.get("max_silence", positive_duration, 300.0, 'a duration like "5m"')
    grace = sec.get("rotate_grace", positive_duration, 5.0, 'a duration like "5s"')
    skew = sec.get("max_skew", positive_duration, 300.0, 'a duration like "5m"')
    no_spans: tuple[str, ...] = ()
    spans = sec.get("hours", string_list, no_spans, 'a list like ["mon-fri 08:00-18:00"]')
    zone = sec.get("timezone", string, "local", 'a time zone like "Europe/Madrid" or "local"')
    hours, hour_problems = parse_hours(list(spans), zone)
    for key, why in hour_problems:
        problems.add(sec.key(key), why)
    sec.finish()
    if problems.items:
        return None, problems.items
    return (
        QueueLogOptions(
            path=file,
            channels=channels,
            channel=channel,
            start=start,
            follow=follow,
            poll_interval=poll,
            batch=batch,
            heartbeat=heartbeat,
            max_silence=silence,
            hours=hours or OpeningHours(),
            rotate_grace=grace,
            max_skew=skew,
        ),
        [],
    )

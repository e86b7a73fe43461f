"""Configuration: TOML in, validated frozen dataclasses out, every problem listed with its key path."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from collectors.registry import validate_collector
from cxmon.customers import check_region
from cxmon.errors import ConfigError
from cxmon.forecast.options import ForecastOptions, parse_forecast
from cxmon.journey import MatchRule, Step, Threshold, parse_step
from cxmon.localtime import check_timezone
from cxmon.measures import SERVICE_LEVEL_FORMULAS
from cxmon.units import parse_duration, parse_ratio
from cxmon.validation import (
    Problems,
    Section,
    boolean,
    duration_list,
    http_url,
    integer,
    number,
    optional_string,
    positive_duration,
    string,
    string_list,
)

T = TypeVar("T")

OTHER = "other"


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """Engine settings."""

    tick: float = 0.1
    windows: tuple[float, ...] = (300.0, 900.0, 3600.0)
    panes: int = 30
    """Each window is kept as this many panes; its edge moves a pane at a time."""
    short_abandon: float = 5.0
    service_level_formula: str = "excl_short_abandons"
    stale_after: float = 60.0
    recover_after: float = 30.0
    """A source that was down and came back keeps its steps STALE until it has stayed up this long
    (a source that reconnects and drops again is one outage). 0: back is up at once."""
    lost_after: float = 4 * 3600.0
    """A contact with no terminal event after this long is counted lost and leaves the queue."""
    trend_horizon: float = 600.0
    warn_confidence: float = 0.9
    """How sure a figure past ``warn`` must be that it is no chance dip before it turns WATCH at
    once: a share or score counts when a series truly at ``warn`` would show it with a
    probability under 1 − this (else only once it has lasted a window). 0: past warn is WATCH."""
    trend_confidence: float = 0.99
    """How significant a trend's slope must be (against its residuals and its sampling noise)
    before it projects a breach. 0: every slope projects."""
    strikes: int = 3
    """Bad experiences in 24 h that make a customer count in the strikes measure."""
    low_score: float = 2.0
    """A feedback score at or below this is a bad experience (a strike)."""
    queue_size: int = 32
    """Engine queue bound, in batches."""
    max_clock_skew: float = 300.0
    """An event stamped further than this ahead of its source's clock is rejected (never moves time)."""


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """History database settings."""

    path: str = "cxmon.db"
    retention: float = 30 * 86400.0
    flush_interval: float = 0.25
    batch_size: int = 1000
    max_pending: int = 50_000
    """Rows that may wait for a commit; past it the sources are held until commits succeed."""


@dataclass(frozen=True, slots=True)
class ListenConfig:
    """A server address; 127.0.0.1 unless configured otherwise."""

    host: str = "127.0.0.1"
    port: int = 0
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class HubConfig(ListenConfig):
    """The websocket hub: its address and the bearer tokens watchers present."""

    viewer_token: str | None = None
    """Lets a watcher see (``[hub] viewer_token`` or CXMON_HUB_VIEWER_TOKEN)."""
    ack_token: str | None = None
    """Lets a watcher see and acknowledge (``[hub] ack_token`` or CXMON_HUB_ACK_TOKEN)."""


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """The daemon's HTTP server: /metrics, /healthz and the routes sources contribute (webhooks)."""

    host: str = "127.0.0.1"
    port: int = 9464
    max_connections: int = 256
    """Open connections kept at most; past it the oldest idle one is closed to let a new one in."""
    idle_timeout: float = 30.0
    """Seconds a connection may sit without completing a request before it is closed."""


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """Where detector transitions go."""

    alertmanager_url: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    resend_interval: float = 60.0
    log: bool = True


@dataclass(frozen=True, slots=True)
class CollectorConfig:
    """One configured source; ``options`` are checked by the source type's own validator."""

    type: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    """Key path of this collector in the config, for error messages."""


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration."""

    monitor: MonitorConfig
    store: StoreConfig
    prometheus: ListenConfig
    hub: HubConfig
    alerts: AlertsConfig
    steps: tuple[Step, ...]
    channels: tuple[str, ...]
    queues: tuple[str, ...]
    collectors: tuple[CollectorConfig, ...]
    http: HttpConfig = field(default_factory=HttpConfig)
    forecast: ForecastOptions = field(default_factory=ForecastOptions)
    source: str = "<memory>"
    customer_region: str | None = None
    """``[customers] region``: default region of phone numbers without a country code (cxmon.customers)."""
    display_timezone: str | None = None
    """``[display] timezone``: the zone the dashboard shows times in (None: the machine's own)."""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def step_for(self, channel: str, queue: str) -> Step | None:
        """Return the first step whose match rules take this channel/queue, or None."""
        for step in self.steps:
            for rule in step.match:
                if rule.matches(channel, queue):
                    return step
        return None

    def step(self, name: str) -> Step:
        """Return the step called ``name``.

        Raises:
            KeyError: no such step.
        """
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)


# --------------------------------------------------------------------------- validation


def _confidence(value: Any) -> float:
    """A confidence level: a ratio under 1 (at 100 % nothing would ever be beyond its noise)."""
    number = parse_ratio(value)
    if number >= 1.0:
        raise ValueError(value)
    return number


def parse_listen(value: Any) -> tuple[str, int]:
    """Parse ``"HOST:PORT"`` (``"[::1]:9464"`` for IPv6).

    Raises:
        ValueError: not of that form.
    """
    if not isinstance(value, str) or ":" not in value:
        raise ValueError(value)
    host, _, port_text = value.rpartition(":")
    host = host.strip("[]")
    port = int(port_text)
    if not host or not 0 <= port <= 65535:
        raise ValueError(value)
    return host, port


def _listen(section: Section, default: tuple[str, int], problems: Problems) -> ListenConfig:
    host, port = section.get("listen", parse_listen, default, 'an address like "127.0.0.1:9464"')
    enabled = section.get("enabled", boolean, True, "true or false")
    section.finish()
    return ListenConfig(host=host, port=port, enabled=enabled)


def _hub(section: Section, problems: Problems) -> HubConfig:
    host, port = section.get("listen", parse_listen, ("127.0.0.1", 8765), 'an address like "127.0.0.1:8765"')
    enabled = section.get("enabled", boolean, True, "true or false")
    env = os.environ
    viewer = section.get("viewer_token", optional_string, None, "a token")
    viewer = viewer or env.get("CXMON_HUB_VIEWER_TOKEN")
    ack = section.get("ack_token", optional_string, None, "a token") or env.get("CXMON_HUB_ACK_TOKEN")
    if viewer and ack and viewer == ack:
        problems.add(section.key("ack_token"), "must differ from viewer_token")
    section.finish()
    return HubConfig(
        host=host, port=port, enabled=enabled, viewer_token=viewer or None, ack_token=ack or None
    )


def validate(raw: dict[str, Any], source: str = "<memory>") -> Config:
    """Validate a parsed TOML document.

    Args:
        raw: the document as :func:`tomllib.loads` returns it.
        source: where it came from, for messages.

    Returns:
        The configuration.

    Raises:
        ConfigError: listing every problem found, each with its key path.
    """
    problems = Problems()
    top = Section(raw, "", problems)

    mon = Section(top.table("monitor"), "monitor", problems)
    windows: tuple[float, ...] = mon.get(
        "windows",
        duration_list,
        tuple[float, ...]((300.0, 900.0, 3600.0)),
        'a list of durations like ["5m", "15m"]',
    )
    if not windows:
        problems.add("monitor.windows", "needs at least one window")
        windows = (300.0,)
    windows = tuple(sorted(set(windows)))
    formula = mon.get("service_level_formula", string, "excl_short_abandons", "a formula name")
    if formula not in SERVICE_LEVEL_FORMULAS:
        problems.add(
            "monitor.service_level_formula",
            f"unknown formula {formula!r}; known: {', '.join(SERVICE_LEVEL_FORMULAS)}",
        )
    monitor = MonitorConfig(
        tick=mon.get("tick", positive_duration, 0.1, 'a duration like "500ms"'),
        windows=windows,
        panes=mon.get("panes", integer(1), 30, "a whole number ≥ 1"),
        short_abandon=mon.get("short_abandon", parse_duration, 5.0, 'a duration like "5s"'),
        service_level_formula=formula,
        stale_after=mon.get("stale_after", positive_duration, 60.0, 'a duration like "60s"'),
        recover_after=mon.get("recover_after", parse_duration, 30.0, 'a duration like "30s"'),
        lost_after=mon.get("lost_after", positive_duration, 4 * 3600.0, 'a duration like "4h"'),
        trend_horizon=mon.get("trend_horizon", positive_duration, 600.0, 'a duration like "10m"'),
        warn_confidence=mon.get("warn_confidence", _confidence, 0.9, 'a share like "90%" (under 100%)'),
        trend_confidence=mon.get("trend_confidence", _confidence, 0.99, 'a share like "99%" (under 100%)'),
        strikes=mon.get("strikes", integer(1), 3, "a whole number ≥ 1"),
        low_score=mon.get("low_score", number, 2.0, "a score like 2"),
        queue_size=mon.get("queue_size", integer(1), 32, "a whole number ≥ 1"),
        max_clock_skew=mon.get("max_clock_skew", positive_duration, 300.0, 'a duration like "5m"'),
    )
    mon.finish()

    st = Section(top.table("store"), "store", problems)
    store = StoreConfig(
        path=st.get("path", string, "cxmon.db", "a file path"),
        retention=st.get("retention", positive_duration, 30 * 86400.0, 'a duration like "30d"'),
        flush_interval=st.get("flush_interval", positive_duration, 0.25, 'a duration like "250ms"'),
        batch_size=st.get("batch_size", integer(1), 1000, "a whole number ≥ 1"),
        max_pending=st.get("max_pending", integer(1), 50_000, "a whole number ≥ 1"),
    )
    st.finish()

    ht = Section(top.table("http"), "http", problems)
    http_host, http_port = ht.get(
        "listen", parse_listen, ("127.0.0.1", 9464), 'an address like "127.0.0.1:9464"'
    )
    http = HttpConfig(
        host=http_host,
        port=http_port,
        max_connections=ht.get("max_connections", integer(1), 256, "a whole number ≥ 1"),
        idle_timeout=ht.get("idle_timeout", positive_duration, 30.0, 'a duration like "30s"'),
    )
    ht.finish()
    # Without a listen of its own, /metrics is served on [http] listen.
    prometheus = _listen(
        Section(top.table("prometheus"), "prometheus", problems), (http.host, http.port), problems
    )
    hub = _hub(Section(top.table("hub"), "hub", problems), problems)

    al = Section(top.table("alerts"), "alerts", problems)
    alerts = AlertsConfig(
        alertmanager_url=al.get(
            "alertmanager_url", http_url, None, 'an http(s) URL like "http://127.0.0.1:9093"'
        ),
        webhook_url=al.get("webhook_url", http_url, None, 'an http(s) URL like "https://example.org/hook"'),
        webhook_secret=al.get("webhook_secret", optional_string, None, "a string")
        or os.environ.get("CXMON_WEBHOOK_SECRET"),
        resend_interval=al.get("resend_interval", positive_duration, 60.0, 'a duration like "1m"'),
        log=al.get("log", boolean, True, "true or false"),
    )
    if alerts.webhook_url and not alerts.webhook_secret:
        problems.add(
            "alerts.webhook_secret", "required when alerts.webhook_url is set (or CXMON_WEBHOOK_SECRET)"
        )
    al.finish()

    jr = Section(top.table("journey"), "journey", problems)
    channels: tuple[str, ...] = jr.get(
        "channels", string_list, tuple[str, ...](("voice", "chat", "email")), "a list of channel names"
    )
    queues: tuple[str, ...] = jr.get("queues", string_list, tuple[str, ...](()), "a list of queue names")
    raw_steps = jr.raw("steps")
    steps: list[Step] = []
    if not isinstance(raw_steps, list) or not raw_steps:
        problems.add("journey.steps", "expected at least one [[journey.steps]] table")
    else:
        seen: set[str] = set()
        for i, item in enumerate(raw_steps):
            step = parse_step(item, f"journey.steps[{i}]", windows, problems, monitor.lost_after)
            if step is None:
                continue
            if step.name in seen or step.name == OTHER:
                problems.add(f"journey.steps[{i}].name", f"step name {step.name!r} is used twice or reserved")
            seen.add(step.name)
            steps.append(step)
    jr.finish()

    collectors: list[CollectorConfig] = []
    raw_cols = top.raw("collectors")
    if raw_cols is not None and not isinstance(raw_cols, list):
        problems.add("collectors", "expected a list of [[collectors]] tables")
        raw_cols = []
    names: set[str] = set()
    options_of: list[tuple[object, dict[str, Any], str]] = []
    for i, item in enumerate(raw_cols or []):
        path = f"collectors[{i}]"
        if not isinstance(item, dict):
            problems.add(path, "expected a table")
            continue
        ctype = item.get("type")
        name = item.get("name") or (ctype if isinstance(ctype, str) else f"collector{i}")
        if not isinstance(name, str):
            problems.add(f"{path}.name", f"expected a string, got {name!r}")
            continue
        if name in names:
            problems.add(f"{path}.name", f"collector name {name!r} is used twice")
        names.add(name)
        options = {k: v for k, v in item.items() if k not in ("type", "name")}
        options_of.append((ctype, options, path))
        if isinstance(ctype, str):
            collectors.append(CollectorConfig(type=ctype, name=name, options=options, path=path))
    forecast, forecast_problems = parse_forecast(top.raw("forecast"), "forecast")
    problems.items.extend(forecast_problems)
    cu = Section(top.table("customers"), "customers", problems)
    customer_region = cu.get("region", check_region, None, 'a region code like "GB"')
    cu.finish()
    di = Section(top.table("display"), "display", problems)
    display_timezone = di.get("timezone", check_timezone, None, 'a time zone like "Europe/London"')
    di.finish()
    top.finish(
        [
            *("monitor", "store", "http", "prometheus", "hub", "alerts", "journey", "collectors"),
            *("customers", "display"),
        ]
    )
    # The config's own shape is known now; each source type checks its options after it.
    for ctype, options, path in options_of:
        problems.items.extend(validate_collector(ctype, options, path))

    if problems.items:
        raise ConfigError(problems.items, source)
    return Config(
        monitor=monitor,
        store=store,
        prometheus=prometheus,
        hub=hub,
        alerts=alerts,
        steps=tuple(steps),
        channels=channels,
        queues=queues,
        collectors=tuple(collectors),
        http=http,
        forecast=forecast,
        source=source,
        customer_region=customer_region,
        display_timezone=display_timezone,
        raw=raw,
    )


def loads(text: str, source: str = "<memory>") -> Config:
    """Parse and validate TOML text.

    Raises:
        ConfigError: the TOML does not parse, or any key is wrong.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: {exc}"]) from None
    return validate(raw, source)


def load(path: str | os.PathLike[str]) -> Config:
    """Read and validate a TOML config file.

    Raises:
        ConfigError: the file is missing, does not parse, or any key is wrong.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read: {exc.strerror}"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # TOML is UTF-8: say where the first byte that is not, as the parser says where its errors are
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            [
                f"{p}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column}); "
                "TOML files are UTF-8"
            ]
        ) from None
    return loads(text, str(p))


def default_config_path() -> Path:
    """Return config/default.toml of a checkout, or the copy packaged with cxmon."""
    here = Path(__file__).resolve().parent
    checkout = here.parent / "config" / "default.toml"
    if checkout.is_file():
        return checkout
    cwd = Path.cwd() / "config" / "default.toml"
    if cwd.is_file():
        return cwd
    return here / "data" / "default.toml"


def known_labels(config: Config) -> tuple[frozenset[str], frozenset[str]]:
    """Return the channel and queue label values metrics may use (config plus ``other``).

    Queues are the configured ``journey.queues``, every literal (glob-free) queue in a match rule,
    and the queues the collectors declare (a simulator's queues, the queue names of a webhook's or
    a live feed's ``queues`` table); channels likewise, with those of a collector's ``channels`` table.
    """
    channels = set(config.channels) | {OTHER}
    queues = set(config.queues) | {OTHER}
    for step in config.steps:
        for rule in step.match:
            if not any(c in rule.channel for c in "*?["):
                channels.add(rule.channel)
            if not any(c in rule.queue for c in "*?["):
                queues.add(rule.queue)
    for col in config.collectors:
        declared = col.options.get("queues", []) or []
        if isinstance(declared, dict):
            # A webhook's or a live feed's table of vendor queue id → queue name: the names are config.
            queues.update(v for v in declared.values() if isinstance(v, str))
            declared = []
        for q in declared:
            if isinstance(q, dict) and isinstance(q.get("name"), str):
                queues.add(q["name"])
                if isinstance(q.get("channel"), str):
                    channels.add(q["channel"])
        mapped = col.options.get("channels")
        if isinstance(mapped, dict):
            # vendor channel → channel: the channels named are config too
            channels.update(v for v in mapped.values() if isinstance(v, str))
    return frozenset(channels), frozenset(queues)


__all__ = [
    "OTHER",
    "SERVICE_LEVEL_FORMULAS",
    "AlertsConfig",
    "CollectorConfig",
    "Config",
    "HttpConfig",
    "HubConfig",
    "ListenConfig",
    "MatchRule",
    "MonitorConfig",
    "Step",
    "StoreConfig",
    "Threshold",
    "default_config_path",
    "known_labels",
    "load",
    "loads",
    "parse_ratio",
    "validate",
]

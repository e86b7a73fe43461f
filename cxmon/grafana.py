"""A Grafana dashboard for cxmon's metrics, generated from the config (``cxmon grafana``)."""

from __future__ import annotations

import json
from typing import Any

from cxmon.catalogue import metric_for
from cxmon.config import Config, Step, Threshold
from cxmon.measures import MEASURES
from cxmon.rules import glob_to_regex
from cxmon.snapshot import State
from cxmon.units import format_window

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_STATE_COLOURS = {State.OK: "green", State.WATCH: "yellow", State.POTHOLE: "red", State.STALE: "purple"}
_UNITS = {"duration": "s", "ratio": "percentunit", "count": "short", "score": "short"}


class _Ids:
    def __init__(self) -> None:
        self.next = 1

    def __call__(self) -> int:
        self.next += 1
        return self.next - 1


def _target(expr: str, legend: str, ref: str = "A") -> dict[str, Any]:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref}


def _first(step: Step, measure: str) -> Threshold | None:
    """The step's first threshold on ``measure``: the one a standard panel draws."""
    return next((t for t in step.thresholds if t.measure == measure), None)


def _thresholds(step: Step, measure: str) -> dict[str, Any] | None:
    th = _first(step, measure)
    return None if th is None else _threshold_steps(th)


def _threshold_steps(th: Threshold) -> dict[str, Any]:
    if th.direction == "above":
        steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
        if th.warn is not None:
            steps.append({"color": "yellow", "value": th.warn})
        steps.append({"color": "red", "value": th.breach})
    else:
        steps = [{"color": "red", "value": None}]
        if th.warn is not None:
            steps.append({"color": "yellow", "value": th.breach})
            steps.append({"color": "green", "value": th.warn})
        else:
            steps.append({"color": "green", "value": th.breach})
    return {"mode": "absolute", "steps": steps}


def _window_of(step: Step, measure: str, default: str) -> str:
    """Return the window a panel of ``measure`` shows: its threshold's, so the lines drawn are the
    ones the detector and the rules judge that figure by, else ``default``."""
    th = _first(step, measure)
    return default if th is None else format_window(th.window)


def _timeseries(
    ids: _Ids,
    title: str,
    targets: list[dict[str, Any]],
    unit: str,
    pos: tuple[int, int, int, int],
    thresholds: dict[str, Any] | None = None,
    description: str = "",
) -> dict[str, Any]:
    x, y, w, h = pos
    defaults: dict[str, Any] = {"unit": unit, "custom": {"lineWidth": 1, "fillOpacity": 10}}
    if thresholds is not None:
        defaults["thresholds"] = thresholds
        defaults["custom"]["thresholdsStyle"] = {"mode": "line"}
    return {
        "id": ids(),
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
        "targets": targets,
    }


def _state_panel(ids: _Ids, step: Step, pos: tuple[int, int, int, int]) -> dict[str, Any]:
    x, y, w, h = pos
    mappings = [
        {
            "type": "value",
            "options": {
                str(s.code): {"text": s.value.upper(), "color": _STATE_COLOURS[s], "index": i}
                for i, s in enumerate(State)
            },
        }
    ]
    return {
        "id": ids(),
        "type": "stat",
        "title": step.label + (" ★" if step.moment_of_truth else ""),
        "description": f"State of step {step.name!r}: OK, WATCH, POTHOLE or STALE (cxmon_step_state_code).",
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {
            "defaults": {
                "mappings": mappings,
                "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
                "color": {"mode": "thresholds"},
            },
            "overrides": [],
        },
        "options": {
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "value",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
        "targets": [_target(f'max(cxmon_step_state_code{{step="{step.name}"}})', step.name)],
    }


def _measure_panel(ids: _Ids, step: Step, th: Threshold, pos: tuple[int, int, int, int]) -> dict[str, Any]:
    """A panel of the figure one threshold of ``step`` judges (its measure, window and channels),
    worst series first, with the threshold's lines."""
    m = MEASURES[th.measure]
    labels: dict[str, str] = {"step": step.name}
    scope = []
    if m.windowed:
        labels["window"] = format_window(th.window)
        scope.append(labels["window"])
    if th.channel != "*":
        labels["channel__re"] = glob_to_regex(th.channel)
        scope.append(th.channel)
    title = m.label[0].upper() + m.label[1:] + (f" ({', '.join(scope)})" if scope else "")
    agg = "min" if m.bad == "below" else "max"
    return _timeseries(
        ids,
        title,
        [
            _target(
                f"{agg} by (channel, queue) ({metric_for(th.measure).selector(**labels)})",
                "{{channel}}/{{queue}}",
            )
        ],
        _UNITS[m.kind],
        pos,
        _threshold_steps(th),
        f"{title} of step {step.name!r}, with the threshold it is judged by.",
    )


def build_dashboard(config: Config) -> dict[str, Any]:
    """Return the dashboard as a dict: a row of step states, then a row of panels per step.

    Args:
        config: steps, windows and thresholds (drawn as threshold lines) come from it.

    Returns:
        Grafana dashboard JSON model, with a ``datasource`` template variable.
    """
    ids = _Ids()
    window = format_window(min(config.monitor.windows))
    panels: list[dict[str, Any]] = [
        {
            "id": ids(),
            "type": "row",
            "title": "Journey",
            "collapsed": False,
            "gridPos": {"x": 0, "y": 0, "w": 24, "h": 1},
            "panels": [],
        },
    ]
    n = max(len(config.steps), 1)
    width = max(24 // n, 3)
    y = 1
    for i, step in enumerate(config.steps):
        x = (i * width) % 24
        row_y = y + ((i * width) // 24) * 4
        panels.append(_state_panel(ids, step, (x, row_y, width, 4)))
    y += ((len(config.steps) * width + 23) // 24) * 4

    for step in config.steps:
        s = step.name
        panels.append(
            {
                "id": ids(),
                "type": "row",
                "title": f"{step.label} ({s})",
                "collapsed": False,
                "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
                "panels": [],
            }
        )
        y += 1
        p90_window = _window_of(step, "wait_p90", window)
        sl_window = _window_of(step, "service_level", window)
        ab_window = _window_of(step, "abandon_rate", window)
        p90 = metric_for("wait_p90").selector(step=s, window=p90_window)
        sl = metric_for("service_level").selector(step=s, window=sl_window)
        ab = metric_for("abandon_rate").selector(step=s, window=ab_window)
        panels.append(
            _timeseries(
                ids,
                f"Wait p90 ({p90_window})",
                [
                    _target(f"max by (channel, queue) ({p90})", "{{channel}}/{{queue}}"),
                    _target(
                        "histogram_quantile(0.9, sum by (le) "
                        f'(rate(cxmon_wait_seconds_bucket{{step="{s}"}}[$__rate_interval])))',
                        "p90 from buckets",
                        "B",
                    ),
                ],
                "s",
                (0, y, 6, 8),
                _thresholds(step, "wait_p90"),
                "90th percentile wait of contacts that left the queue.",
            )
        )
        panels.append(
            _timeseries(
                ids,
                f"Service level ({sl_window})",
                [_target(f"min by (channel, queue) ({sl})", "{{channel}}/{{queue}}")],
                "percentunit",
                (6, y, 6, 8),
                _thresholds(step, "service_level"),
                "Answered within the step's target over contacts that left (formula: cxmon_build_info).",
            )
        )
        panels.append(
            _timeseries(
                ids,
                f"Abandons ({ab_window})",
                [
                    _target(f"max by (channel, queue) ({ab})", "rate {{channel}}/{{queue}}"),
                    _target(
                        f'sum(increase(cxmon_contacts_total{{step="{s}",outcome="abandoned"}}[$__rate_interval]))',
                        "abandoned",
                        "B",
                    ),
                ],
                "percentunit",
                (12, y, 6, 8),
                _thresholds(step, "abandon_rate"),
                "Abandon rate (less short abandons) and abandoned contacts.",
            )
        )
        panels.append(
            _timeseries(
                ids,
                "Escalations",
                [
                    _target(
                        f'sum by (queue) (increase(cxmon_escalations_total{{step="{s}"}}[$__rate_interval]))',
                        "{{queue}}",
                    )
                ],
                "short",
                (18, y, 6, 8),
                None,
                "Contacts escalated to a higher tier or a manager.",
            )
        )
        y += 8
        shown = ["wait_p90", "service_level", "abandon_rate"]
        if step.next_reply is not None:  # a ticket step: its next-reply target beside first reply
            shown.append("next_reply_in_target")
            nr_window = _window_of(step, "next_reply_in_target", window)
            nr = metric_for("next_reply_in_target").selector(step=s, window=nr_window)
            panels.append(
                _timeseries(
                    ids,
                    f"Next reply in target ({nr_window})",
                    [_target(f"min by (channel, queue) ({nr})", "{{channel}}/{{queue}}")],
                    "percentunit",
                    (0, y, 12, 8),
                    _thresholds(step, "next_reply_in_target"),
                    "Agents' replies to customers' later messages within the step's next-reply target.",
                )
            )
            y += 8
        # Every other threshold the step is judged by gets a panel of its own, with its lines: a
        # step whose only threshold is on CSAT (or escalation rate, backlog…), or a second threshold
        # on a measure (chat's wait p90 beside voice's), would otherwise show nothing of what pages.
        drawn = [th for th in (_first(step, m) for m in shown) if th is not None]
        extra = [th for th in step.thresholds if not any(th is d for d in drawn)]
        for i, th in enumerate(extra):
            panels.append(_measure_panel(ids, step, th, (12 * (i % 2), y, 12, 8)))
            if i % 2 == 1 or i == len(extra) - 1:
                y += 8

    return {
        "uid": "cxmon-journey",
        "title": "cxmon — customer journey",
        "description": f"Generated by `cxmon grafana` from {config.source}.",
        "tags": ["cxmon", "contact-centre"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "browser",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                }
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


def render_dashboard(config: Config) -> str:
    """Return the dashboard JSON text for ``config``."""
    return json.dumps(build_dashboard(config), indent=2, ensure_ascii=False) + "\n"


def grafana_command(args: Any) -> int:
    """``cxmon grafana [--config FILE]``: print the dashboard JSON; exit 2 on a bad config."""
    from cxmon.rules import load_config_or_report

    config = load_config_or_report(args.config)
    if config is None:
        return 2
    print(render_dashboard(config), end="")
    return 0

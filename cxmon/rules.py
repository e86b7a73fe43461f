"""Prometheus alerting rules generated from the detector's thresholds (``cxmon rules``)."""

from __future__ import annotations

import fnmatch
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cxmon.catalogue import WINDOW_METRICS, metric_for
from cxmon.config import Config, Step, Threshold, default_config_path, load
from cxmon.errors import ConfigError
from cxmon.measures import MEASURES, format_value, volume_figures
from cxmon.units import format_window

POTHOLE_ALERT = "CxmonPothole"
ENGINE_DOWN_ALERT = "CxmonEngineDown"
STALE_ALERT = "CxmonStepStale"
GROUP = "cxmon"
STALE_FOR = 60.0
"""Seconds a step must be STALE before its Prometheus alert fires."""
ENGINE_FROZEN_AFTER = 60.0
"""Seconds since the exported snapshot was published, at scrape time, that ``CxmonEngineDown`` allows."""


def severity(step: Step) -> str:
    """Return the alert severity of ``step``: ``critical`` for a moment of truth, else ``warning``."""
    return "critical" if step.moment_of_truth else "warning"


def pothole_labels(step: Step, th: Threshold) -> dict[str, str]:
    """Return the labels of a pot-hole alert (shared by the rules and cxmon's own Alertmanager sink).

    The rules and :mod:`cxmon.alerts` send identical label sets, so Alertmanager merges the two
    when both are configured instead of paging twice.
    """
    labels = {
        "alertname": POTHOLE_ALERT,
        "step": step.name,
        "measure": th.measure,
        "severity": severity(step),
    }
    windowed = MEASURES[th.measure].windowed
    if windowed:
        labels["window"] = format_window(th.window)
    twins = [
        t
        for t in step.thresholds
        if t.measure == th.measure and (not windowed or t.window == th.window) and t is not th
    ]
    if twins:
        # Two thresholds of one measure and window (voice and chat wait p90, say) would give two
        # rules with one label set: each one's hysteresis would hold on the other's alert, and
        # Prometheus refuses the duplicate series. Their channel patterns tell them apart.
        labels["channel"] = th.channel
    return labels


def stale_labels(step: Step) -> dict[str, str]:
    """Return the labels of a step's STALE alert."""
    return {"alertname": STALE_ALERT, "step": step.name, "severity": "warning"}


def threshold_for(step: Step, measure: str, channel: str = "") -> Threshold | None:
    """Return the threshold of ``step`` on ``measure`` a transition names, or None: the first one
    whose channel pattern takes ``channel`` (the series driving the step), else the first one."""
    on_measure = [th for th in step.thresholds if th.measure == measure]
    for th in on_measure:
        if channel and fnmatch.fnmatchcase(channel, th.channel):
            return th
    return on_measure[0] if on_measure else None


def glob_to_regex(glob: str) -> str:
    """Translate an fnmatch glob into an RE2 regex for a PromQL ``=~`` matcher (always anchored)."""
    out = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = glob.find("]", i + 2)
            if j < 0:
                out.append(r"\[")
            else:
                body = glob[i + 1 : j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out).replace("\\", "\\\\").replace('"', '\\"')


def prom_duration(seconds: float) -> str:
    """Format seconds as a Prometheus duration ("2m", "1h30m", "500ms")."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        n, ms = divmod(ms, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)


def _fmt_number(value: float) -> str:
    return repr(float(value)).removesuffix(".0")


def _volume_expr(th: Threshold, sel: dict[str, str]) -> str:
    """PromQL for the contacts a threshold's value rests on (cxmon.measures.volume, in PromQL)."""
    terms = [WINDOW_METRICS[name].selector(**sel) for name in volume_figures(th.measure)]
    if len(terms) == 1:
        return terms[0]
    return "(" + " + ignoring(outcome) ".join(terms) + ")"


def pothole_expr(step: Step, th: Threshold) -> str:
    """Return the PromQL of a threshold's alert, the detector's state machine in PromQL.

    Per series: past ``breach`` (with at least ``min_volume`` contacts in the window); once the
    alert fires it holds while the value has not got back past ``clear`` (hysteresis through the
    rule's own ``ALERTS`` series). The step takes its worst series, like the detector's roll-up,
    and a STALE step has none (its stale rule fires instead).
    """
    sel: dict[str, str] = {"step": step.name}
    if th.channel != "*":
        sel["channel__re"] = glob_to_regex(th.channel)
    windowed = MEASURES[th.measure].windowed
    if windowed:
        sel["window"] = format_window(th.window)
    value = metric_for(th.measure).selector(**sel)
    above = th.direction == "above"
    op_breach = ">" if above else "<"
    op_clear = ">=" if above else "<="
    gate = ""
    if windowed and th.min_volume:
        vol_sel = {k: v for k, v in sel.items()}
        gate = f" and on(step, channel, queue) {_volume_expr(th, vol_sel)} >= {th.min_volume}"
    labels = pothole_labels(step, th)
    firing = ",".join(
        ['alertstate="firing"'] + [f"{k}={json.dumps(v)}" for k, v in labels.items() if k != "severity"]
    )
    agg = "max" if above else "min"
    # A step whose sources went silent is STALE, not a pot hole (as the detector rolls it up): its
    # figures only drain while nothing comes in, and its stale rule says what is wrong.
    return (
        f"{agg} by (step) (\n"
        f"  ({value} {op_breach} {_fmt_number(th.breach)}{gate})\n"
        f"  or\n"
        f"  (\n"
        f"    ({value} {op_clear} {_fmt_number(th.clear)}{gate})\n"
        f"    and on(step) ALERTS{{{firing}}}\n"
        f"  )\n"
        f")\n"
        f"unless on(step) {stale_expr(step)}"
    )


def stale_expr(step: Step) -> str:
    """PromQL that has a sample while ``step`` is STALE (its sources silent)."""
    return f'max by (step) (cxmon_step_state{{step="{step.name}",state="stale"}}) == 1'


_HUMANIZE = {
    "duration": "{{ $value | humanizeDuration }}",
    "ratio": "{{ $value | humanizePercentage }}",
    "count": '{{ $value | printf "%.0f" }}',
    "score": '{{ $value | printf "%.2f" }}',
}


def pothole_annotations(step: Step, th: Threshold) -> dict[str, str]:
    """Return readable summary and description annotations for a threshold's alert."""
    measure = MEASURES[th.measure]
    op = ">" if th.direction == "above" else "<"
    where = f" ({th.channel})" if th.channel != "*" else ""
    window = f" over {format_window(th.window)}" if measure.windowed else ""
    summary = (
        f"{step.label}{where}: {measure.label} {_HUMANIZE[measure.kind]} {op} "
        f"{format_value(th.measure, th.breach)} for {prom_duration(th.for_)}"
    )
    description = (
        f"Pot hole in step {step.name!r}: {measure.label}{window} is past "
        f"{format_value(th.measure, th.breach)} (worst series). It clears when back past "
        f"{format_value(th.measure, th.clear)}."
    )
    if th.min_volume:
        description += f" Judged only with at least {th.min_volume} contacts in the window."
    return {"summary": summary, "description": description}


@dataclass(frozen=True, slots=True)
class Rule:
    """One alerting rule."""

    alert: str
    expr: str
    for_: str
    labels: dict[str, str]
    annotations: dict[str, str]


def build_rules(config: Config) -> list[Rule]:
    """Return one pot-hole rule per step threshold, and one STALE rule per step.

    Args:
        config: the thresholds come from ``config.steps[*].thresholds``, as for the detector.

    Returns:
        The rules, in config order.
    """
    rules = []
    for step in config.steps:
        for th in step.thresholds:
            labels = pothole_labels(step, th)
            rules.append(
                Rule(
                    alert=labels.pop("alertname"),
                    expr=pothole_expr(step, th),
                    for_=prom_duration(th.for_),
                    labels=labels,
                    annotations=pothole_annotations(step, th),
                )
            )
    for step in config.steps:
        labels = stale_labels(step)
        rules.append(
            Rule(
                alert=labels.pop("alertname"),
                expr=stale_expr(step),
                for_=prom_duration(STALE_FOR),
                labels=labels,
                annotations={
                    "summary": f"{step.label}: no data from its sources",
                    "description": f"Step {step.name!r} is STALE: its collectors have gone silent, "
                    "so its figures cannot be trusted.",
                },
            )
        )
    rules.append(engine_down_rule(config))
    return rules


def engine_down_rule(config: Config) -> Rule:
    """Return the rule that fires while the engine's ticks fail or it publishes no snapshot.

    A frozen engine still answers scrapes with its last figures; ``cxmon_engine_healthy`` says when
    its ticks fail, and ``cxmon_snapshot_published_timestamp_seconds`` stops moving when it stops.
    The age is taken at scrape time (``timestamp()``), so the scrape interval does not count, and
    it must pass a minute at least, so renders held back on a busy machine do not count either.
    """
    from cxmon.exporter import frozen_limit

    limit = max(frozen_limit(config.monitor.tick), ENGINE_FROZEN_AFTER)
    published = "cxmon_snapshot_published_timestamp_seconds"
    return Rule(
        alert=ENGINE_DOWN_ALERT,
        expr=f"cxmon_engine_healthy == 0\nor\ntimestamp({published}) - {published} > {limit:g}",
        for_=prom_duration(STALE_FOR),
        labels={"severity": "critical"},
        annotations={
            "summary": "cxmon's engine is not ticking: its figures are frozen",
            "description": "The engine's last tick failed, or it had published no snapshot for "
            f"{limit:g} s when scraped; every step's figures are out of date.",
        },
    )


def _q(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _lines(config: Config) -> Iterator[str]:
    yield f"# Generated by `cxmon rules` from {config.source}; regenerate rather than edit."
    yield "groups:"
    yield f"  - name: {GROUP}"
    yield "    rules:"
    for rule in build_rules(config):
        yield f"      - alert: {rule.alert}"
        yield "        expr: |-"
        for line in rule.expr.splitlines():
            yield f"          {line}"
        yield f"        for: {rule.for_}"
        yield "        labels:"
        for k, v in rule.labels.items():
            yield f"          {k}: {_q(v)}"
        yield "        annotations:"
        for k, v in rule.annotations.items():
            yield f"          {k}: {_q(v)}"


def render_rules(config: Config) -> str:
    """Return the Prometheus rule file (YAML) for ``config``."""
    return "\n".join(_lines(config)) + "\n"


def load_config_or_report(path: str | None) -> Config | None:
    """Load ``path`` (or the default config); on problems print each to stderr and return None."""
    target = path or str(default_config_path())
    try:
        return load(target)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def rules_command(args: Any) -> int:
    """``cxmon rules [--config FILE]``: print the alerting rules; exit 2 on a bad config."""
    config = load_config_or_report(args.config)
    if config is None:
        return 2
    print(render_rules(config), end="")
    return 0

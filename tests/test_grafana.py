"""Tests for cxmon.grafana: the generated dashboard and the metrics its PromQL names."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cxmon.catalogue import metric_for
from cxmon.cli import main
from cxmon.config import Config, default_config_path, load, loads
from cxmon.engine import Engine
from cxmon.exposition import render
from cxmon.grafana import build_dashboard, render_dashboard
from cxmon.units import format_window
from tests.helpers import TWIN_THRESHOLDS
from tests.integration import sim_config
from tests.metrics_helpers import exported_names, make_series, make_snapshot

PROMTOOL_DIR = Path(__file__).parent / "promtool"
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool"}
_AGGREGATIONS = {
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
}


def promql_metric_names(expr: str) -> set[str]:
    """Return the metric names a PromQL expression selects (not functions, keywords or labels)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "{}", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "[]", text)  # range durations and $__rate_interval
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text)
    names = set()
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?=\s*(\(|\{|\[|\)|$|\s|,))", text):
        name, following = m.group(1), m.group(2)
        if following == "(" or name in _KEYWORDS or name in _AGGREGATIONS:
            continue
        names.add(name)
    return names


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield every panel, rows' nested panels included."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


@pytest.fixture
def config() -> Config:
    """The small two-step config used by the promtool tests."""
    return load(PROMTOOL_DIR / "cxmon.toml")


def test_promql_metric_names_parser() -> None:
    """The test's PromQL reader finds metric names and skips functions, keywords and labels."""
    expr = (
        'histogram_quantile(0.9, sum by (le) (rate(cxmon_wait_seconds_bucket{step="a"}[$__rate_interval])))'
    )
    assert promql_metric_names(expr) == {"cxmon_wait_seconds_bucket"}
    assert promql_metric_names("max by (channel) (up) and on(x) foo_total") == {"up", "foo_total"}


def test_dashboard_has_a_datasource_variable(config: Config) -> None:
    """The dashboard declares a ``datasource`` variable and every panel uses ``${datasource}``."""
    dash = build_dashboard(config)
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(dash):
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
            assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])


def test_dashboard_has_a_state_row_and_four_panels_per_step(config: Config) -> None:
    """A stat panel per step shows its state, then wait p90, service level, abandons, escalations."""
    dash = build_dashboard(config)
    stats = [p for p in dash["panels"] if p["type"] == "stat"]
    assert len(stats) == len(config.steps)
    assert all("cxmon_step_state_code" in p["targets"][0]["expr"] for p in stats)
    for step in config.steps:
        titles = [
            p["title"]
            for p in dash["panels"]
            if p["type"] == "timeseries" and any(f'step="{step.name}"' in t["expr"] for t in p["targets"])
        ]
        assert [t.split(" (")[0] for t in titles][:4] == [
            "Wait p90",
            "Service level",
            "Abandons",
            "Escalations",
        ]


def assert_every_threshold_drawn(config: Config) -> None:
    """Each threshold of ``config`` has a panel querying its measure over its own window (and its
    channels), its breach a line."""
    dash = build_dashboard(config)
    for step in config.steps:
        for th in step.thresholds:
            window = f'window="{format_window(th.window)}"'
            metric = metric_for(th.measure).name + "{"
            drawn = [
                p
                for p in panels(dash)
                if p["type"] == "timeseries"
                and any(
                    metric in t["expr"] and f'step="{step.name}"' in t["expr"] and window in t["expr"]
                    for t in p["targets"]
                )
                and th.breach
                in [s["value"] for s in p["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])]
            ]
            assert drawn, (step.name, th.measure, format_window(th.window), th.channel)


def test_every_threshold_is_drawn_over_the_figure_it_judges() -> None:
    """Each threshold of the default journey (escalation's 15m wait p90, resolution's 60m one, the
    feedback step's CSAT) has a panel querying its measure over its own window, its breach a line."""
    assert_every_threshold_drawn(load(default_config_path()))


def test_a_second_threshold_on_a_measure_is_drawn_too() -> None:
    """Voice and chat wait p90 thresholds of one step: chat's breach (2m) is drawn on a panel of
    chat's wait p90, not left out because voice's took the standard panel."""
    config = loads(TWIN_THRESHOLDS, "twin.toml")
    assert_every_threshold_drawn(config)
    (chat,) = [p for p in panels(build_dashboard(config)) if p["title"] == "Wait p90 (5m, chat)"]
    assert 'channel=~"chat"' in chat["targets"][0]["expr"]


def test_panel_ids_are_unique(config: Config) -> None:
    """Grafana needs distinct panel ids."""
    ids = [p["id"] for p in panels(build_dashboard(config))]
    assert len(ids) == len(set(ids))


def test_every_query_names_only_exported_metrics(config: Config) -> None:
    """Every panel's PromQL selects metrics that appear in a rendered exposition."""
    snap = make_snapshot((make_series(), make_series("get_help", "chat", "support")))
    exposed = exported_names(render(snap, config))
    used = set()
    for panel in panels(build_dashboard(config)):
        for target in panel.get("targets", []):
            used |= promql_metric_names(target["expr"])
    assert used
    assert used <= exposed, used - exposed


def test_cli_grafana_prints_json(capsys: pytest.CaptureFixture[str], config: Config) -> None:
    """`cxmon grafana --config FILE` prints the dashboard JSON and exits 0."""
    assert main(["grafana", "--config", str(PROMTOOL_DIR / "cxmon.toml")]) == 0
    out = capsys.readouterr().out
    assert out == render_dashboard(config)
    assert json.loads(out)["uid"] == "cxmon-journey"


async def test_every_query_names_metrics_of_a_real_run() -> None:
    """Against the exposition of the Engine run on the simulator, every panel's metrics exist."""
    config = sim_config(speed="max", duration="20m")
    async with Engine(config, store=False) as engine:
        await engine.run()
        exposed = exported_names(render(engine.latest, config))
    used = {
        n
        for p in panels(build_dashboard(config))
        for t in p.get("targets", [])
        for n in promql_metric_names(t["expr"])
    }
    assert used <= exposed, used - exposed

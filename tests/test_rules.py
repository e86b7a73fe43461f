"""Tests for cxmon.rules: alerting rules from the detector's thresholds, checked by promtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from cxmon.cli import main
from cxmon.config import Config, default_config_path, load, loads
from cxmon.exposition import render
from cxmon.rules import (
    POTHOLE_ALERT,
    STALE_ALERT,
    build_rules,
    glob_to_regex,
    pothole_labels,
    prom_duration,
    render_rules,
)
from tests.helpers import TWIN_THRESHOLDS
from tests.integration import require_binary
from tests.metrics_helpers import exported_names, make_series, make_snapshot

PROMTOOL_DIR = Path(__file__).parent / "promtool"


@pytest.fixture
def config() -> Config:
    """The config the promtool unit tests are written against."""
    return load(PROMTOOL_DIR / "cxmon.toml")


def test_one_pothole_rule_per_threshold_with_the_same_for(config: Config) -> None:
    """Every step threshold gives one CxmonPothole rule whose ``for`` is the threshold's."""
    doc = yaml.safe_load(render_rules(config))
    rules = [r for r in doc["groups"][0]["rules"] if r["alert"] == POTHOLE_ALERT]
    thresholds = [(s, t) for s in config.steps for t in s.thresholds]
    assert len(rules) == len(thresholds)
    for rule, (step, th) in zip(rules, thresholds, strict=True):
        assert rule["for"] == prom_duration(th.for_)
        assert rule["labels"]["step"] == step.name
        assert rule["labels"]["measure"] == th.measure


def test_rules_carry_severity_and_a_readable_summary(config: Config) -> None:
    """Labels hold severity and step; the summary names the step, the measure and the limit."""
    doc = yaml.safe_load(render_rules(config))
    first = doc["groups"][0]["rules"][0]
    assert first["labels"]["severity"] == "critical"  # "order" is a moment of truth
    assert first["annotations"]["summary"].startswith("Ordering (voice): service level")
    assert "< 80%" in first["annotations"]["summary"]


def test_an_hour_window_is_spelled_60m_in_labels_and_selectors() -> None:
    """A threshold over "60m" gives ``window="60m"`` in the rule's labels and in its PromQL."""
    config = load(default_config_path())
    rules = [r for r in build_rules(config) if r.labels.get("window") in ("60m", "1h")]
    assert rules and all(r.labels["window"] == "60m" for r in rules)
    assert all('window="60m"' in r.expr and 'window="1h"' not in r.expr for r in rules)


def test_each_step_gets_a_stale_rule(config: Config) -> None:
    """One CxmonStepStale rule per step."""
    stale = [r for r in build_rules(config) if r.alert == STALE_ALERT]
    assert sorted(r.labels["step"] for r in stale) == sorted(s.name for s in config.steps)


def test_rule_labels_match_the_dispatcher_labels(config: Config) -> None:
    """The rules' labels plus alertname are what cxmon.alerts sends, so Alertmanager merges the two."""
    step = config.step("get_help")
    rule = next(r for r in build_rules(config) if r.labels.get("measure") == "wait_p90")
    assert {"alertname": rule.alert, **rule.labels} == pothole_labels(step, step.thresholds[0])


def test_rules_use_only_exported_metrics(config: Config) -> None:
    """Every metric name in every rule expression appears in an exposition as served (or is ALERTS)."""
    exposed = exported_names(render(make_snapshot((make_series(),)), config, published=1_700_000_000.0))
    names = set()
    for rule in build_rules(config):
        stripped = re.sub(r'"[^"]*"', "", rule.expr)
        names |= set(re.findall(r"\b(cxmon_[a-z0-9_]+|ALERTS)\b", stripped))
    assert names - {"ALERTS"} <= exposed
    assert "cxmon_window_contacts" in names  # the volume gate


@pytest.mark.parametrize(
    ("glob", "regex"),
    [("voice", "voice"), ("*", ".*"), ("sales-?", "sales\\\\-."), ("[ab]*", "[ab].*"), ("a.b", "a\\\\.b")],
)
def test_glob_to_regex(glob: str, regex: str) -> None:
    """fnmatch globs become RE2 regexes, escaped for a PromQL string."""
    assert glob_to_regex(glob) == regex


@pytest.mark.parametrize(("seconds", "text"), [(120, "2m"), (5400, "1h30m"), (0.5, "500ms"), (600, "10m")])
def test_prom_duration(seconds: float, text: str) -> None:
    """Durations are written in Prometheus' notation."""
    assert prom_duration(seconds) == text


def test_promtool_check_rules_passes_on_the_default_config(tmp_path: Path) -> None:
    """`promtool check rules` accepts the rules made from config/default.toml."""
    promtool = require_binary("promtool")
    out = tmp_path / "rules.yml"
    out.write_text(render_rules(load(Path(__file__).parents[1] / "config" / "default.toml")))
    proc = subprocess.run([promtool, "check", "rules", str(out)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_unit_tests_pass(tmp_path: Path, config: Config) -> None:
    """`promtool test rules` passes tests/promtool/*_test.yml against freshly generated rules."""
    promtool = require_binary("promtool")
    (tmp_path / "rules.yml").write_text(render_rules(config))
    tests = sorted(PROMTOOL_DIR.glob("*_test.yml"))
    assert tests
    for test in tests:
        shutil.copy(test, tmp_path / test.name)
    proc = subprocess.run(
        [promtool, "test", "rules", *(t.name for t in tests)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_unit_tests_catch_a_rule_without_hysteresis(tmp_path: Path, config: Config) -> None:
    """The unit tests fail when the rules lose their clear-level hysteresis (so they can fail)."""
    promtool = require_binary("promtool")
    rules = render_rules(config).replace(">= 50)", ">= 5000)")
    (tmp_path / "rules.yml").write_text(rules)
    shutil.copy(PROMTOOL_DIR / "pothole_test.yml", tmp_path / "pothole_test.yml")
    proc = subprocess.run(
        [promtool, "test", "rules", "pothole_test.yml"], cwd=tmp_path, capture_output=True, timeout=120
    )
    assert proc.returncode != 0


def test_cli_rules_prints_the_rules(capsys: pytest.CaptureFixture[str], config: Config) -> None:
    """`cxmon rules --config FILE` prints render_rules for that config and exits 0."""
    code = main(["rules", "--config", str(PROMTOOL_DIR / "cxmon.toml")])
    assert code == 0
    assert capsys.readouterr().out == render_rules(config)


def test_cli_rules_exits_2_on_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A config with problems lists them on stderr and exits 2."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[journey]\nsteps = []\n")
    assert main(["rules", "--config", str(bad)]) == 2
    assert "journey.steps" in capsys.readouterr().err


def test_missing_binary_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """With CI set, an integration test whose binary is absent fails instead of skipping."""
    monkeypatch.setenv("PATH", "")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require_binary("promtool")


def test_missing_binary_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without CI, an absent binary skips the test with a message naming it."""
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="promtool is not installed"):
        require_binary("promtool")


TWIN_TEST = """
rule_files: [rules.yml]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'cxmon_wait_p90_seconds{step="help",channel="voice",queue="billing",window="5m"}'
        values: '90x40'
      - series: 'cxmon_wait_p90_seconds{step="help",channel="chat",queue="support",window="5m"}'
        values: '110x40'
    alert_rule_test:
      - eval_time: 5m
        alertname: CxmonPothole
        exp_alerts:
          - exp_labels: {step: help, measure: wait_p90, window: 5m, severity: warning, channel: voice}
            exp_annotations:
              summary: "help (voice): wait p90 1m 30s > 1m for 1m"
              description: "Pot hole in step 'help': wait p90 over 5m is past 1m (worst series).
                It clears when back past 1m."
"""


def test_two_thresholds_on_one_measure_and_window_fire_apart(tmp_path: Path) -> None:
    """Voice and chat wait p90 thresholds of one step over one window are two alerts told apart by
    `channel`: voice past its breach fires only voice's; chat between its clear and breach does not
    fire on the strength of voice's alert, and Prometheus gets no duplicate series."""
    promtool = require_binary("promtool")
    (tmp_path / "rules.yml").write_text(render_rules(loads(TWIN_THRESHOLDS, "twin.toml")))
    (tmp_path / "twin_test.yml").write_text(TWIN_TEST)
    proc = subprocess.run(
        [promtool, "test", "rules", "twin_test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

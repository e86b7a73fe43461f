"""Configuration: the default validates; every problem is listed with its key path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cxmon.config import default_config_path, known_labels, load, loads
from cxmon.errors import ConfigError
from tests.helpers import ONE_STEP, REPO


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        loads(text, "t.toml")
    return info.value.problems


def test_default_config_models_the_whole_journey() -> None:
    """The default has every journey step, in order, with thresholds and moments of truth."""
    config = load(REPO / "config" / "default.toml")
    assert [s.name for s in config.steps] == [
        "enquire",
        "order",
        "get_help",
        "escalate",
        "resolve",
        "follow_up",
    ]
    assert all(s.thresholds for s in config.steps)
    assert {s.name for s in config.steps if s.moment_of_truth} == {"order", "get_help", "resolve"}
    assert [c.type for c in config.collectors] == ["simulator"]


def test_example_config_is_valid() -> None:
    """The commented example config validates as it ships."""
    load(REPO / "config" / "example.toml")


def test_packaged_default_is_the_checkout_default() -> None:
    """The copy packaged with the wheel is the same file as config/default.toml."""
    assert (REPO / "config" / "default.toml").read_bytes() == (
        REPO / "cxmon" / "data" / "default.toml"
    ).read_bytes()
    assert default_config_path().is_file()


def test_bad_duration_is_reported_with_its_key_path() -> None:
    """A threshold value of the wrong kind names the full key path and what was expected."""
    text = ONE_STEP.replace('breach = "60s"', 'breach = "fast"')
    assert problems_of(text) == [
        "journey.steps[0].thresholds[0].breach: expected a duration like \"90s\", got 'fast'"
    ]


def test_every_problem_is_listed_not_just_the_first() -> None:
    """Several mistakes in one file are all reported, each with its path, unknown keys with a hint."""
    text = (
        ONE_STEP.replace('measure = "wait_p90"', 'measure = "wait_p95"')
        .replace("panes = 6", 'panes = 6\ntikc = "1s"')
        .replace("direction", "direction")
        .replace('for = "30s"', 'for = "30s"\ndirection = "sideways"')
    )
    found = problems_of(text)
    assert "monitor.tikc: unknown key (did you mean 'tick'?)" in found
    assert any(
        p.startswith("journey.steps[0].thresholds[0].measure: unknown measure 'wait_p95'") for p in found
    )
    assert any(p.startswith("journey.steps[0].thresholds[0].direction:") for p in found)
    assert len(found) >= 3


def test_ratio_thresholds_accept_percent_and_reject_nonsense() -> None:
    """Ratios read "80%" or 0.8; 180 is not a ratio."""
    text = ONE_STEP.replace('measure = "wait_p90"', 'measure = "service_level"').replace(
        'warn = "30s"\n  breach = "60s"\n  clear = "45s"',
        'warn = "85%"\n  breach = 180\n  clear = 0.83\n  direction = "below"',
    )
    assert problems_of(text) == [
        'journey.steps[0].thresholds[0].breach: expected a ratio like 0.8 or "80%", got 180'
    ]


def test_unknown_collector_type_gets_a_suggestion() -> None:
    """A misspelt collector type is an error with a did-you-mean."""
    found = problems_of(ONE_STEP + '\n[[collectors]]\ntype = "simulater"\n')
    assert found == ["collectors[0].type: unknown collector type 'simulater' (did you mean 'simulator'?)"]


def test_labels_are_bounded_by_config() -> None:
    """Known label values are the configured channels and queues (plus `other`), nothing from input."""
    channels, queues = known_labels(load(default_config_path()))
    assert "other" in channels and "other" in queues
    assert {"billing", "tier2", "tickets"} <= queues


def run_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cxmon", "check", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def test_check_command_exit_codes(tmp_path: Path) -> None:
    """`cxmon check` exits 0 on a valid file and 2, listing every problem, on a bad one."""
    ok = run_check(REPO / "config" / "default.toml")
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text(ONE_STEP.replace('breach = "60s"', 'breach = "fast"').replace("panes = 6", "panes = 0"))
    res = run_check(bad)
    assert res.returncode == 2
    assert "journey.steps[0].thresholds[0].breach: expected a duration" in res.stderr
    assert "monitor.panes: expected a whole number ≥ 1, got 0" in res.stderr
    assert "2 problem(s)" in res.stderr


def test_unparseable_toml_is_a_config_error(tmp_path: Path) -> None:
    """TOML syntax errors are reported with the file name, not as a traceback."""
    bad = tmp_path / "broken.toml"
    bad.write_text("[monitor\n")
    res = run_check(bad)
    assert res.returncode == 2
    assert "broken.toml" in res.stderr and "Traceback" not in res.stderr


def test_config_that_is_not_utf8_is_reported_with_its_line(tmp_path: Path) -> None:
    """A config with a byte that is not UTF-8 (a Latin-1 label) is one problem at its file:line:
    exit 2, no traceback."""
    bad = tmp_path / "latin1.toml"
    text = ONE_STEP.replace("[[journey.steps]]", '[[journey.steps]]\nlabel = "Caf\u00e9"', 1)
    bad.write_bytes(text.encode("latin-1"))
    line = text.splitlines().index('label = "Caf\u00e9"') + 1
    res = run_check(bad)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert f"latin1.toml:{line}: not UTF-8 text (byte 0xe9 at column 13)" in res.stderr
    assert "1 problem(s)" in res.stderr


def test_alert_urls_that_no_sink_can_send_to_are_problems() -> None:
    """An Alertmanager or webhook URL without http:// (`127.0.0.1:9093`), with no host, or of another
    scheme is reported at its key path, rather than accepted and every alert failing later."""
    found = problems_of(
        ONE_STEP
        + '[alerts]\nalertmanager_url = "127.0.0.1:9093"\nwebhook_url = "ftp://hooks.example.org/x"\n'
        + 'webhook_secret = "s"\n'
    )
    assert found == [
        'alerts.alertmanager_url: expected an http(s) URL like "http://127.0.0.1:9093", '
        "got '127.0.0.1:9093'",
        'alerts.webhook_url: expected an http(s) URL like "https://example.org/hook", '
        "got 'ftp://hooks.example.org/x'",
    ]
    ok = loads(ONE_STEP + '[alerts]\nalertmanager_url = "http://127.0.0.1:9093"\n', "t.toml")
    assert ok.alerts.alertmanager_url == "http://127.0.0.1:9093"


def test_a_threshold_on_a_channel_its_step_never_sees_is_a_problem() -> None:
    """A threshold whose `channel` no match rule of its step gives (a typo, "vocie") would never judge
    anything: it is reported at its key path with the step's channels."""
    found = problems_of(ONE_STEP.replace('measure = "wait_p90"', 'measure = "wait_p90"\n  channel = "vocie"'))
    assert found == [
        "journey.steps[0].thresholds[0].channel: 'vocie' matches none of the step's channels (voice)"
    ]


@pytest.mark.parametrize("name", ['get "help"', "help\\me", "help{{x}}", "get help"])
def test_a_step_name_that_is_not_an_identifier_is_a_problem(name: str) -> None:
    """A step name with a quote, backslash, brace or space, which `cxmon rules` would write into
    PromQL and YAML as invalid text, is reported at its key path."""
    found = problems_of(ONE_STEP.replace('name = "help"', f"name = {json.dumps(name)}"))
    assert found == [
        'journey.steps[0].name: expected an identifier (letters, digits, "_", "-", "."), like "get_help", '
        f"got {name!r}"
    ]


def test_two_thresholds_on_one_figure_of_one_channel_are_a_problem() -> None:
    """A second threshold on the same measure, window and channel as another (a copy left with
    another breach) is reported at its key path: the two would judge one figure twice and page
    with alerts no one could tell apart. Another window, or another channel, is a threshold of its own."""
    second = """
  [[journey.steps.thresholds]]
  measure = "wait_p90"
  window = "60s"
  warn = "40s"
  breach = "90s"
  clear = "60s"
"""
    found = problems_of(ONE_STEP + second)
    assert found == [
        "journey.steps[0].thresholds[1]: the same measure, window and channel as thresholds[0] "
        "(one threshold per figure: give them different channels, or keep one)"
    ]
    loads(ONE_STEP + second.replace('window = "60s"', 'window = "5m"'), "t.toml")
    loads(ONE_STEP + second + '  channel = "voice"\n', "t.toml")


def test_a_step_that_matches_nothing_is_a_problem() -> None:
    """`match = []` leaves a step no contact can enter, whose thresholds never judge: it is reported."""
    found = problems_of(ONE_STEP.replace('match = [{ channel = "voice", queue = "q*" }]', "match = []"))
    assert found == ["journey.steps[0].match: expected at least one {channel, queue} table, got []"]


def test_installed_package_falls_back_to_its_packaged_default(tmp_path: Path) -> None:
    """Installed without a checkout beside it, cxmon finds the default config packaged inside cxmon/."""
    import shutil

    site = tmp_path / "site"
    shutil.copytree(REPO / "cxmon", site / "cxmon", ignore=shutil.ignore_patterns("__pycache__", "tui"))
    shutil.copytree(REPO / "collectors", site / "collectors", ignore=shutil.ignore_patterns("__pycache__"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "from cxmon.config import default_config_path, load; p = default_config_path(); "
        "print(p); print(len(load(p).steps))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        cwd=elsewhere,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    path, steps = res.stdout.split()
    assert Path(path) == site / "cxmon" / "data" / "default.toml"
    assert int(steps) == 6


def test_queue_and_channel_names_a_webhook_maps_to_are_labels() -> None:
    """The queue names of a webhook's ``queues`` table (vendor id → name) and the channels of its
    ``channels`` table are known labels: a mapped Zendesk group is its own series, not ``other``."""
    config = loads(
        ONE_STEP
        + """
[[collectors]]
type = "webhook"
name = "zendesk"
adapter = "zendesk"
secret = "s"
queues = { "360001234" = "billing" }
channels = { "web_form" = "web" }
"""
    )
    channels, queues = known_labels(config)
    assert "billing" in queues and "360001234" not in queues
    assert "web" in channels


TICKETS = """
[monitor]
lost_after = "4h"

[journey]
channels = ["voice", "email"]

[[journey.steps]]
name = "help"
match = [{ channel = "voice" }]

[[journey.steps]]
name = "resolve"
match = [{ channel = "email" }]
"""


def test_a_step_lost_after_not_longer_than_its_backlog_age_is_refused() -> None:
    """A step whose own lost_after is not longer than its backlog_age is refused at its key path:
    its contacts would be closed as lost before aged_backlog could count them."""
    [problem] = problems_of(TICKETS + 'backlog_age = "8h"\nlost_after = "8h"\n')
    assert problem.startswith("journey.steps[1].lost_after: 8h is not longer than backlog_age (8h)")
    assert "closed as lost before aged_backlog could count it" in problem


def test_a_step_lost_after_within_its_business_hours_age_is_refused() -> None:
    """On a 09:00–17:00 weekday calendar a 3d resolution (72 business hours) takes at least 10 days
    8 hours of wall clock: a lost_after of 9d is refused, one of 14d is taken."""
    calendar = 'targets = { resolution = "3d" }\n  [journey.steps.calendar.hours]\n' + "".join(
        f'  {d} = ["09:00-17:00"]\n' for d in ("mon", "tue", "wed", "thu", "fri")
    )
    [problem] = problems_of(TICKETS + 'lost_after = "9d"\n' + calendar)
    assert problem.startswith(
        "journey.steps[1].lost_after: 9d00h is not longer than "
        "backlog_age in the step's business hours (10d08h)"
    )
    assert loads(TICKETS + 'lost_after = "14d"\n' + calendar).steps[1].lost_after == 14 * 86400


def test_a_step_lost_after_is_its_own_else_long_enough_for_its_aged_backlog() -> None:
    """A step takes its own lost_after; one that counts an aged backlog (backlog_age, a resolution
    target or an aged_backlog threshold) and sets none waits twice its age (at least
    [monitor] lost_after); any other step, voice here, keeps [monitor] lost_after."""

    def lost_after(extra: str) -> tuple[float, float]:
        help_, resolve = loads(TICKETS + extra).steps
        return help_.lost_after / 3600, resolve.lost_after / 3600

    assert lost_after("") == (4, 4)
    assert lost_after('lost_after = "30m"\n') == (4, 0.5)
    assert lost_after('backlog_age = "8h"\n') == (4, 16)
    assert lost_after('backlog_age = "1h"\n') == (4, 4)
    assert lost_after('targets = { resolution = "1d" }\n') == (4, 48)
    threshold = '  [[journey.steps.thresholds]]\n  measure = "aged_backlog"\n  breach = 5\n'
    assert lost_after(threshold) == (4, 48)

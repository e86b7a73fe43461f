"""The ``[forecast]`` table: defaults, and every bad key reported with its key path."""

from __future__ import annotations

import pytest

from cxmon.config import loads
from cxmon.errors import ConfigError
from cxmon.forecast.options import ForecastOptions
from tests.helpers import ONE_STEP


def test_defaults_without_a_forecast_table() -> None:
    """A config without [forecast] forecasts voice and chat over 5 and 30 minutes."""
    assert loads(ONE_STEP).forecast == ForecastOptions()


def test_settings_are_read() -> None:
    """Spans, channels and configured agents come through."""
    config = loads(
        ONE_STEP
        + '[forecast]\narrival_span = "10m"\nchannels = ["voice"]\nagents = { q1 = 12 }\nrise_score = 10\n'
        + 'breaking_score = 8\nbreaking_tolerance = "15%"\nbreach_chance = "10%"\n'
    )
    assert config.forecast.arrival_span == 600.0
    assert config.forecast.channels == ("voice",)
    assert dict(config.forecast.agents) == {"q1": 12}
    assert config.forecast.rise_score == 10.0
    assert config.forecast.breaking_score == 8.0
    assert config.forecast.breaking_tolerance == pytest.approx(0.15)
    assert config.forecast.breach_chance == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('arrival_span = "10s"', "forecast.arrival_span: expected a duration of at least a minute"),
        ("agents = { q1 = -1 }", "forecast.agents: expected a table of queue = agents"),
        ("enabled = 1", "forecast.enabled: expected true or false"),
        ("rise_score = 0", "forecast.rise_score: expected a number > 0"),
        ("breaking_score = -1", "forecast.breaking_score: expected a number ≥ 0"),
        ("breaking_score = inf", "forecast.breaking_score: expected a number ≥ 0"),
        ('breaking_tolerance = "100%"', "forecast.breaking_tolerance: expected a share from 0 %"),
        ("breaking_tolerance = true", "forecast.breaking_tolerance: expected a share from 0 %"),
        ('breach_chance = "100%"', "forecast.breach_chance: expected a share from 0 % (off) to below 100 %"),
        ('breach_chance = "often"', "forecast.breach_chance: expected a share from 0 % (off) to below 100 %"),
        ('baseline_quantile = "40%"', "forecast.baseline_quantile: expected a share from 50 %"),
        ("arival_span = 300", "forecast.arival_span: unknown key"),
        ("baseline_weeks = 1\nbaseline_min_weeks = 2", "forecast.baseline_min_weeks: must not exceed"),
    ],
)
def test_bad_keys_are_reported_with_their_path(table: str, problem: str) -> None:
    """Each bad [forecast] key is one problem naming forecast.<key>."""
    with pytest.raises(ConfigError) as caught:
        loads(ONE_STEP + "[forecast]\n" + table + "\n")
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems

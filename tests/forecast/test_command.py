"""``cxmon staffing``: the calculator's output, JSON keys, table, and one clear line for a bad argument."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cxmon.cli import main
from tests.collectors.test_erlang import erlang_service_level as reference_sl
from tests.helpers import REPO

TEXTBOOK = ["staffing", "--arrivals", "100/30m", "--aht", "180s", "--target", "20s"]


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main([*TEXTBOOK, *args, "--json"]) == 0
    doc: dict[str, object] = json.loads(capsys.readouterr().out)
    return doc


def test_json_has_the_issue_keys(capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints model, p_wait, p_abandon, service_level, asa_seconds, occupancy, agents_needed."""
    doc = run_json(capsys, "--agents", "14", "--goal", "80%")
    assert doc["model"] == "erlang_c"
    assert doc["p_wait"] == pytest.approx(0.1741, abs=5e-5)
    assert doc["p_abandon"] == 0.0
    assert doc["service_level"] == pytest.approx(0.8884, abs=5e-5)
    assert doc["asa_seconds"] == pytest.approx(7.84, abs=5e-3)
    assert doc["occupancy"] == pytest.approx(0.714, abs=5e-4)
    assert doc["agents_needed"] == 14


def test_patience_selects_erlang_a(capsys: pytest.CaptureFixture[str]) -> None:
    """With --patience the model is Erlang A and some arrivals abandon."""
    doc = run_json(capsys, "--agents", "14", "--patience", "2m")
    assert doc["model"] == "erlang_a"
    assert isinstance(doc["p_abandon"], float) and doc["p_abandon"] > 0.0
    assert "agents_needed" not in doc


def test_overloaded_erlang_c_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    """8 agents on 10 Erlangs without patience: the figures are null in JSON and the text says why."""
    doc = run_json(capsys, "--agents", "8")
    assert doc["service_level"] is None and doc["p_wait"] is None
    assert main([*TEXTBOOK, "--agents", "8"]) == 0
    assert "no steady state" in capsys.readouterr().out


def test_without_agents_a_table_of_counts(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --agents, one row per agent count from 11 up, each as the textbook formula says."""
    doc = run_json(capsys, "--goal", "0.8")
    rows = doc["rows"]
    assert isinstance(rows, list)
    assert [r["agents"] for r in rows][:4] == [11, 12, 13, 14]
    for r in rows:
        assert r["service_level"] == pytest.approx(reference_sl(r["agents"], 10.0, 180.0, 20.0), rel=1e-9)
    assert doc["agents_needed"] == 14
    assert main([*TEXTBOOK, "--goal", "80%"]) == 0
    text = capsys.readouterr().out
    assert "agents needed for 80/20: 14" in text
    assert "← goal" in next(line for line in text.splitlines() if line.strip().startswith("14 "))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--arrivals", "100", "--aht", "180s", "--target", "20s"], "--arrivals: expected"),
        (["--arrivals", "100/0m", "--aht", "180s", "--target", "20s"], "--arrivals: the period"),
        (["--arrivals", "100/30m", "--aht", "fast", "--target", "20s"], "--aht: expected"),
        (["--arrivals", "100/30m", "--aht", "0s", "--target", "20s"], "--aht: must be above 0"),
        (["--arrivals", "100/30m", "--aht", "180s"], "--target is required"),
        (["--arrivals", "100/30m", "--aht", "180s", "--target", "20s", "--agents", "x"], "--agents"),
        (["--arrivals", "100/30m", "--aht", "180s", "--target", "20s", "--goal", "120%"], "--goal"),
        (["--arrivals", "100/30m", "--aht", "180s", "--target", "20s", "--patience=-2m"], "--patience"),
    ],
)
def test_bad_argument_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    """A bad value: exit 2, nothing on stdout, one line on stderr naming the option."""
    assert main(["staffing", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], captured.err


def test_the_installed_command_runs() -> None:
    """`python -m cxmon staffing` in a fresh process prints the figures and exits 0."""
    proc = subprocess.run(
        [sys.executable, "-m", "cxmon", *TEXTBOOK, "--agents", "14"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "88.8 %" in proc.stdout


def test_more_agents_than_are_computed_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """--agents above 1,000,000 is one line naming the option and its range, exit 2 (it was
    computed, agent by agent, for as long as that took)."""
    assert main([*TEXTBOOK, "--agents", "1000000000"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "cxmon staffing: --agents: expected a whole number from 1 to 1,000,000, got '1000000000'\n"
    )


@pytest.mark.parametrize("goal", [[], ["--goal", "80%"]], ids=["table", "goal"])
def test_a_load_beyond_the_agents_computed_is_refused(goal: list[str]) -> None:
    """A load above 1,000,000 Erlangs asked for a table or for the agents a goal needs is one line
    naming --arrivals, exit 2, rather than a search through every agent count up to the load."""
    proc = subprocess.run(
        [sys.executable, "-m", "cxmon", "staffing", "--arrivals", "1e7/1s", "--aht", "180s",
         "--target", "20s", *goal],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        "cxmon staffing: --arrivals: 1e7/1s over an AHT of 3m is a load of 1,800,000,000 Erlangs, "
        "which needs more than 1,000,000 agents\n"
    )


def test_figures_that_cannot_be_computed_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Erlang A far past its load with a long patience (a series that does not converge) is one
    line on stderr and exit 2, not a traceback."""
    args = ["staffing", "--arrivals", "1.99e7/h", "--aht", "180s", "--target", "20s", "--agents", "5"]
    assert main([*args, "--patience", "10h"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("cxmon staffing: these figures cannot be computed (answered-wait series did not")

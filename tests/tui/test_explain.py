"""A drill-down explains a figure: its formula, the counts behind it, its window and its threshold."""

from __future__ import annotations

import dataclasses
import re
from types import MappingProxyType

from textual.widgets import Markdown, Static, TabbedContent

from cxmon.config import Threshold, load
from cxmon.engine import Engine
from cxmon.measures import format_value
from cxmon.snapshot import SeriesFigures
from cxmon.tui.app import CxmonApp
from cxmon.tui.explain import threshold_words
from cxmon.tui.feed import MemoryFeed
from cxmon.tui.screens.help import HelpScreen
from cxmon.tui.widgets.step_matrix import StepMatrix
from tests.helpers import REPO
from tests.tui.conftest import SIZE, settle

BILLING = ("get_help", "voice", "billing")
FORMULA = "answered within 20s ÷ (answered + abandoned − short abandons)"


def billing(engine: Engine) -> SeriesFigures:
    """The series the incident hits."""
    return next(s for s in engine.latest.series if s.key == BILLING)


async def test_enter_on_the_red_row_explains_its_service_level(engine: Engine) -> None:
    """Enter on Getting help's red voice row opens the detail, which works the 5m service level out:
    the formula, then within ÷ (answered + abandoned − short abandons) with the window's own counts."""
    series = billing(engine)
    five = series.windows[300.0]
    answered, abandoned, short = (int(five[m] or 0) for m in ("answered", "abandoned", "short_abandoned"))
    level = five["service_level"]
    assert level is not None and level < 0.8  # red: past the 80 % breach
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=(160, 48)) as pilot:
        matrix = app.query_one(StepMatrix)
        await settle(pilot, lambda: matrix.row_count > 3)
        await pilot.press("1")
        matrix.move_cursor(row=matrix.row_keys_in_order.index("get_help\tvoice\t"))
        await pilot.press("enter")
        await settle(pilot, lambda: app.query_one("#tabs", TabbedContent).active == "detail")
        await pilot.pause()
        text = str(app.query_one("#detail-explain", Static).render())
    assert f"service level over 5m = {FORMULA}" in text, text
    denominator = answered + abandoned - short
    match = re.search(
        rf"= (\d+) ÷ \({answered} \+ {abandoned} − {short}\) = \1 ÷ {denominator} = (\d+)%", text
    )
    assert match, text
    within = int(match.group(1))
    assert abs(within / denominator - level) < 1e-9  # the counts shown give the figure shown
    assert "✖ past breach: pot hole below 80% for 2m on voice" in text


async def test_the_help_names_the_service_level_formula_in_use(engine: Engine) -> None:
    """? shows the formula of the running config, with T and each step's target."""
    app = CxmonApp(engine, refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.snapshot.version > 0)
        await pilot.press("question_mark")
        await settle(pilot, lambda: isinstance(app.screen, HelpScreen))
        source = app.screen.query_one(Markdown).source
    assert "answered within T ÷ (answered + abandoned − short abandons)" in source
    assert "Getting help 20s" in source


async def test_the_help_and_the_palette_name_the_windows_w_cycles_through() -> None:
    """With windows of 15m, 30m and 60m (the bank's config), ? and the command palette name those,
    not a fixed 5m / 15m / 60m, and w goes through them in that order."""
    config = load(REPO / "config" / "anonymous-bank.toml")
    app = CxmonApp(MemoryFeed(config), refresh_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        described = {c.title: c.help for c in app.get_system_commands(app.screen)}
        seen = [app.window]
        for _ in range(3):
            await pilot.press("w")
            seen.append(app.window)
        await pilot.press("question_mark")
        await settle(pilot, lambda: isinstance(app.screen, HelpScreen))
        source = app.screen.query_one(Markdown).source
    assert "| w | cycle the window (15m / 30m / 60m) |" in source
    assert described["Cycle window"] == "Show the next window: 15m, 30m, 60m (w)"
    assert seen == [900.0, 1800.0, 3600.0, 900.0]


async def test_the_detail_says_why_exits_can_exceed_arrivals(engine: Engine) -> None:
    """Where answered + abandoned exceed offered, the detail says exits of earlier arrivals count."""
    snap = engine.latest
    series = billing(engine)
    windows = dict(series.windows)
    windows[300.0] = MappingProxyType({**windows[300.0], "offered": 35, "answered": 32, "abandoned": 7})
    changed = dataclasses.replace(series, windows=MappingProxyType(windows))
    snap = dataclasses.replace(snap, series=tuple(changed if s.key == BILLING else s for s in snap.series))
    app = CxmonApp(MemoryFeed(engine.config, snap), refresh_interval=0)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: app.snapshot.version > 0)
        app.selected_step, app.selected_series = "get_help", BILLING
        await pilot.press("3")
        await pilot.pause()
        note = " ".join(str(app.query_one("#detail-exits", Static).render()).split())
    assert "In 5m, 39 left the queue (answered + abandoned) but 35 arrived (offered)" in note
    assert "arrived before the window" in note


async def test_a_sparkline_names_its_window_and_a_threshold_judging_another(engine: Engine) -> None:
    """With service level judged over 15m, its sparkline line says its own figure is the 5m one and
    that the thresholds beside it are the 15m window's, rather than set a 5m figure by a 15m rule."""
    config = engine.config
    steps = tuple(
        dataclasses.replace(
            step,
            thresholds=tuple(
                dataclasses.replace(th, window=900.0) if th.measure == "service_level" else th
                for th in step.thresholds
            ),
        )
        if step.name == "get_help"
        else step
        for step in config.steps
    )
    feed = MemoryFeed(dataclasses.replace(config, steps=steps), engine.latest)
    app = CxmonApp(feed, refresh_interval=0)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: app.snapshot.version > 0)
        app.selected_step, app.selected_series = "get_help", BILLING
        await pilot.press("3")
        await pilot.pause()
        lines = str(app.query_one("#detail-sparks", Static).render()).splitlines()
    level = next(line for line in lines if line.startswith("service level"))
    figure = format_value("service_level", billing(engine).windows[300.0]["service_level"])
    assert re.match(rf"service level +5m +\S+ +{figure} +warn 85% · breach 80% \(voice, 15m\)$", level), level
    wait = next(line for line in lines if line.startswith("wait p90"))
    assert wait.split()[2] == "5m", wait


def test_a_thresholds_volume_gate_reads_as_a_minimum_of_what_it_counts() -> None:
    """min_volume is a gate ("judged only with at least 1 next reply"), in the unit its measure
    counts, not "judged from 1 contacts" as if that many had been seen; a threshold without
    ``for`` says no "for 0.0s"."""
    th = Threshold(
        measure="next_reply_in_target",
        window=3600.0,
        warn=0.9,
        breach=0.8,
        direction="below",
        for_=0.0,
        clear=0.8,
        channel="*",
        min_volume=1,
    )
    words = threshold_words(th)
    assert (
        words
        == "pot hole below 80% (warn below 90%, clears back past 80%, judged only with at least 1 next reply)"
    )
    gate = dataclasses.replace(th, measure="service_level", min_volume=10, for_=120.0)
    assert threshold_words(gate).endswith("judged only with at least 10 contacts)")

"""Detail pane: one step's series over the last hour (sparklines against thresholds) and every window."""

from __future__ import annotations

from datetime import tzinfo

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from cxmon.config import Config
from cxmon.forecast.display import forecast_lines
from cxmon.localtime import zone_label
from cxmon.measures import MEASURES, format_value
from cxmon.snapshot import EMPTY_SNAPSHOT, SeriesFigures, SeriesKey, Snapshot, StepStatus
from cxmon.tui.explain import exits_note, explain
from cxmon.tui.format import (
    SPARK_BARS,
    SPARK_MEASURES,
    STATE_WORD,
    clock_text,
    figure_measures,
    judge,
    series_label,
    threshold_text,
    thresholds_for,
)
from cxmon.tui.widgets.diff_table import Cell, DiffTable
from cxmon.units import format_window

_EXPLAIN_STYLE = {"✖": "bold $text-error", "▲": "$text-warning", "✔": "$text-success"}
_VERDICT_STYLE = {"breach": "bold $text-error", "warn": "$text-warning", "ok": "$text-success"}


def pick_series(
    snapshot: Snapshot, step: str | None, key: SeriesKey | None
) -> tuple[StepStatus | None, SeriesFigures | None]:
    """Return the step to detail (the chosen one, else the worst) and its series (chosen, else worst)."""
    status = snapshot.step(step) if step else None
    if status is None and snapshot.steps:
        status = max(snapshot.steps, key=lambda s: s.state.severity)
    if status is None:
        return None, None
    members = snapshot.series_of(status.name)
    chosen = next((s for s in members if s.key == key), None)
    if chosen is None and members:
        chosen = max(members, key=lambda s: (s.state.severity, s.value("offered") or 0))
    return status, chosen


def spark_content(series: SeriesFigures, measure: str, config: Config, points: int) -> Content:
    """One sparkline line: label, the last ``points`` minutes coloured against thresholds, now, limits."""
    ths = thresholds_for(config, series.step, measure, series.channel)
    recent: list[float | None] = [figs.get(measure) for _, figs in series.history][-points:]
    history: list[float | None] = [*([None] * (points - len(recent))), *recent]
    known = [v for v in history if v is not None]
    top = max([*known, *(th.breach for th in ths)], default=0.0)
    bars: list[tuple[str, str]] = []
    for v in history:
        if v is None:
            bars.append((" ", ""))
            continue
        index = 0 if top <= 0 else round(v / top * (len(SPARK_BARS) - 1))
        bar = SPARK_BARS[max(0, min(len(SPARK_BARS) - 1, index))]
        bars.append((bar, _VERDICT_STYLE[judge(v, ths)] if ths else "$text-primary"))
    now = series.value(measure)
    # The history and the figure are the shortest window's: name it, and any other window a
    # threshold beside them judges (the bank judges service level over 30m, beside a 15m figure).
    shortest = min(series.windows) if series.windows else None
    label = MEASURES[measure].label
    limits = threshold_text(ths, shortest)
    return Content.assemble(
        (f"{label:<14}", "bold"),
        (f"{format_window(shortest) if shortest else '':<4}", "$text-muted"),
        *bars,
        " ",
        (f"{format_value(measure, now):>6}", _VERDICT_STYLE[judge(now, ths)] if ths else "bold"),
        ("  " + limits if limits else "", "$text-muted"),
    )


SPARK_FIXED = 14 + 4 + 1 + 6
"""A sparkline line's cells besides its bars and limits: the label, its window, a space, the figure."""
PANE_GUTTER = 5
"""The pane's cells around its lines: padding (2), the focus bar (1) and the scrollbar (2)."""


def spark_points(series: SeriesFigures | None, config: Config, width: int) -> int:
    """Minutes of sparkline (10 to 60) that leave room for every line's thresholds in ``width`` cells.

    Args:
        series: the series shown (None: none yet).
        config: its thresholds.
        width: the pane's width.

    Returns:
        The number of bars each sparkline draws.
    """
    limits = 0
    if series is not None:
        for measure in SPARK_MEASURES:
            ths = thresholds_for(config, series.step, measure, series.channel)
            text = threshold_text(ths, min(series.windows) if series.windows else None)
            limits = max(limits, len(text) + 2 if text else 0)
    return max(10, min(60, width - PANE_GUTTER - SPARK_FIXED - limits))


class DetailPane(VerticalScroll):
    """The chosen step/series: state and reason, 60-minute sparklines, figures for every window."""

    snapshot: reactive[Snapshot] = reactive(EMPTY_SNAPSHOT, always_update=False)
    """The snapshot being shown."""
    step: reactive[str | None] = reactive(None)
    """The step chosen (None: the worst step)."""
    series_key: reactive[SeriesKey | None] = reactive(None)
    """The series chosen (None: the step's worst series)."""

    def __init__(self, config: Config, *, tz: tzinfo | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.config = config
        self.tz = tz
        self._shown: tuple[object, ...] | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="detail-title")
        yield Static(id="detail-sparks")
        yield Static(id="detail-explain")
        yield Static(id="detail-instant")
        yield Static(id="detail-exits")
        yield DiffTable(id="detail-figures", cursor_type="none")

    def on_mount(self) -> None:
        self._paint()

    def watch_snapshot(self) -> None:
        self._paint()

    def watch_step(self) -> None:
        self._paint()

    def watch_series_key(self) -> None:
        self._paint()

    def on_resize(self) -> None:
        self._shown = None
        self._paint()

    def _paint(self) -> None:
        if not self.is_mounted:
            return
        status, series = pick_series(self.snapshot, self.step, self.series_key)
        points = spark_points(series, self.config, self.size.width)
        key = (status, series, points, self.snapshot.windows)
        if key == self._shown:
            return
        self._shown = key
        title = self.query_one("#detail-title", Static)
        sparks = self.query_one("#detail-sparks", Static)
        instant = self.query_one("#detail-instant", Static)
        explained = self.query_one("#detail-explain", Static)
        exits = self.query_one("#detail-exits", Static)
        figures = self.query_one("#detail-figures", DiffTable)
        if status is None:
            title.update("No step yet: waiting for the first snapshot.")
            return
        star = "★ moment of truth · " if status.moment_of_truth else ""
        ack = f"\n✓ acknowledged by {status.ack.who}: {status.ack.note}" if status.ack else ""
        where = f" — {series_label(series)}" if series else ""
        title.update(
            Content.assemble(
                (f"{status.label}{where}  ", "bold"),
                (STATE_WORD[status.state], f"bold {_state_style(status.state.value)}"),
                f"  since {clock_text(status.since, self.tz)} {zone_label(self.tz, status.since)}\n",
                (star, "$text-accent"),
                status.reason or "within bounds",
                ack,
            )
        )
        if series is None:
            sparks.update("No series under this step yet.")
            instant.update("")
            explained.update("")
            exits.update("")
            figures.set_rows([])
            return
        sparks.update(
            Content("\n").join(spark_content(series, m, self.config, points) for m in SPARK_MEASURES)
        )
        lines = explain(series, self.config, self.snapshot.service_level_formula)
        explained.update(
            Content("\n").join(
                Content.styled(line, _EXPLAIN_STYLE.get(line.strip()[:1], "")) for line in lines
            )
        )
        explained.display = bool(lines)
        note = exits_note(series)
        exits.update(note)
        exits.display = bool(note)
        instant.update(
            "\n".join(
                [
                    "  ".join(
                        f"{MEASURES[m].label} {format_value(m, v)}"
                        for m, v in series.instant.items()
                        if m in MEASURES
                    ),
                    *forecast_lines(series.forecast),
                    *([f"Baselines: {self.snapshot.baseline}"] if self.snapshot.baseline is not None else []),
                ]
            )
        )
        windows = tuple(series.windows)
        titles = ["measure", *(format_window(w) for w in windows)]
        if len(figures.columns) != len(titles):
            figures.set_columns(titles)
        rows = []
        for measure in figure_measures(series):
            ths = thresholds_for(self.config, series.step, measure, series.channel)
            cells: list[Cell] = [(MEASURES[measure].label, "")]
            for w in windows:
                value = series.windows[w].get(measure)
                cells.append((format_value(measure, value), judge(value, ths)))
            rows.append((measure, tuple(cells)))
        figures.set_rows(rows)


def _state_style(state: str) -> str:
    return {"pothole": "$text-error", "watch": "$text-warning", "stale": "$text-secondary"}.get(
        state, "$text-success"
    )

"""DiffTable: a DataTable that is given whole rows each time and touches only the cells that changed."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import tzinfo

from rich.text import Text
from textual.widgets import DataTable

from cxmon.localtime import zone_label

Cell = tuple[str, str]
"""(text, style name): a verdict ("ok", "warn", "breach"), a state class ("-watch"…), or a style."""
Row = tuple[str, tuple[Cell, ...]]
"""(row key, cells)."""


class DiffTable(DataTable[Text]):
    """Rows are replaced wholesale only when their keys or order change; otherwise cells are patched."""

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._cells: dict[str, tuple[Cell, ...]] = {}
        self._order: list[str] = []
        self._titles: tuple[tuple[str, ...], str] | None = None
        """The titles :meth:`set_zoned_columns` last set, and the zone's name they carry."""

    def set_columns(self, titles: Sequence[str]) -> None:
        """Replace the columns (and drop every row), keeping the view where it was scrolled to."""
        self._keep_scroll()
        self.clear(columns=True)
        for i, title in enumerate(titles):
            self.add_column(title, key=str(i))
        self._cells = {}
        self._order = []

    def set_zoned_columns(
        self, titles: Sequence[str], zoned: Collection[str], tz: tzinfo | None, ts: float | None
    ) -> bool:
        """Set the columns, the titles in ``zoned`` naming the zone their times are in as it is
        called at ``ts`` ("Since (IDT)"; now when None): a replay of August shows summer time in
        December, and a monitor running across the change of the clocks renames it. The columns
        (and rows) are set again only when that name or the titles change; return whether they were.
        """
        zone = zone_label(tz, ts)
        if self._titles == (tuple(titles), zone) and self.columns:
            return False
        self._titles = (tuple(titles), zone)
        self.set_columns([f"{t} ({zone})" if t in zoned else t for t in titles])
        return True

    def cell_styles(self) -> dict[str, str]:
        """Map style names to Rich styles from the current theme."""
        theme = self.app.theme_variables
        error = theme.get("text-error", "red")
        warning = theme.get("text-warning", "yellow")
        return {
            "breach": f"bold {error}",
            "warn": warning,
            "-pothole": f"bold {error}",
            "-watch": f"bold {warning}",
            "-stale": f"bold {theme.get('text-secondary', 'magenta')}",
            "-ok": theme.get("text-success", "green"),
            "muted": theme.get("text-muted", "dim"),
        }

    def set_rows(self, rows: Sequence[Row]) -> bool:
        """Show ``rows``; return whether anything on screen changed."""
        styles = self.cell_styles()

        def text(cell: Cell) -> Text:
            return Text(cell[0], style=styles.get(cell[1], cell[1] if cell[1] not in ("ok", "") else ""))

        order = [key for key, _ in rows]
        changed = False
        if order != self._order:
            current = self.current_key
            self._keep_scroll()
            self.clear()
            for key, cells in rows:
                self.add_row(*(text(c) for c in cells), key=key)
            if current in order:
                self.move_cursor(row=order.index(current), animate=False)
            changed = True
        else:
            for key, cells in rows:
                old = self._cells.get(key)
                if old is None or old == cells:
                    continue
                for col, (new_cell, old_cell) in enumerate(zip(cells, old, strict=True)):
                    if new_cell != old_cell:
                        # Widening is cheap; a narrower cell makes DataTable re-measure the whole column.
                        wider = len(new_cell[0]) > len(old_cell[0])
                        self.update_cell(key, str(col), text(new_cell), update_width=wider)
                        changed = True
        self._order = order
        self._cells = dict(rows)
        return changed

    def _keep_scroll(self) -> None:
        """Put the view back where it was once the table is rebuilt (clearing scrolls to the origin)."""
        x, y = self.scroll_x, self.scroll_y
        if x or y:
            self.call_after_refresh(self.scroll_to, x=x, y=y, animate=False)

    @property
    def current_key(self) -> str | None:
        """The key of the row under the cursor."""
        if not self._order or not 0 <= self.cursor_row < len(self._order):
            return None
        return self._order[self.cursor_row]

    @property
    def row_keys_in_order(self) -> list[str]:
        """Row keys top to bottom."""
        return list(self._order)

"""One run from the store: config, record, loss curves and the 15-language grid; a run still
training updates as the app's store index sees its folder change."""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from mpt_engine.results import StoredRun
from mpt_engine.run_state import RunState
from mpt_tui.render import collapse_warning, run_summary
from mpt_tui.widgets.accuracy_grid import AccuracyGrid
from mpt_tui.widgets.loss_plot import LossPlot

SETTINGS_ROOM = 32  # characters of the settings column (40) left by its scrollbar and padding


class RunDetailScreen(Screen):
    BINDINGS = [("escape", "app.pop_screen", "Back")]

    def __init__(self, stored: StoredRun) -> None:
        super().__init__()
        self.stored = stored

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="detail-title")
        with Horizontal(id="detail-body"):
            with VerticalScroll(id="settings-column"):
                yield DataTable(id="settings", show_header=False, cursor_type="none")
                yield Static(id="settings-long")  # values too long for a cell, wrapped
            with Vertical():
                yield LossPlot(id="detail-plot")
                yield AccuracyGrid(id="detail-grid")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#settings", DataTable)
        table.add_columns("field", "value")
        rows, long = run_summary(self.stored), []
        room = SETTINGS_ROOM - max(len(field) for field, _ in rows)  # what a value may take
        for field, value in rows:
            if len(value) <= room and "\n" not in value:
                table.add_row(field, value)
            else:
                long.append(Text.assemble((field, "bold"), "\n", value))
        self.query_one("#settings-long", Static).update(Text("\n").join(long))
        self.refresh_run()
        self.watch(self.app, "store_changed", self._store_changed, init=False)

    def _store_changed(self) -> None:
        """The run again when its folder changed (the index replaces a run it rereads)."""
        latest = self.app.index.run(self.stored.run_id)
        if latest is not None and latest is not self.stored:
            self.stored = latest
            self.refresh_run()

    def refresh_run(self) -> None:
        stored = self.stored
        run = RunState.from_events(stored.run_id, stored.events(), stored.status)
        average = stored.result["average"] if stored.result else run.average
        title = f"[b]{stored.run_id}[/]  {run.status}"
        if average is not None:
            title += f"  average {average:.1f}"
        if run.error:
            title += f"  [red]{run.error}[/]"
        warning = collapse_warning(stored.result)
        if warning:
            title += f"\n[yellow]{escape(warning)}[/]"
        self.query_one("#detail-title", Static).update(title)
        self.query_one("#detail-plot", LossPlot).show(run)
        self.query_one("#detail-grid", AccuracyGrid).show(run.per_language, average, run.task)

"""One run from the store: config, record, loss curves and the 15-language grid; a run still
training updates as its events.jsonl grows."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from mpt_engine.record import minute
from mpt_engine.results import StoredRun, read_run
from mpt_tui.live import LiveRun
from mpt_tui.widgets.accuracy_grid import AccuracyGrid
from mpt_tui.widgets.loss_plot import LossPlot

RECORD_KEYS = ("started_at", "finished_at", "device", "hostname", "python")


class RunDetailScreen(Screen):
    BINDINGS = [("escape", "app.pop_screen", "Back")]

    def __init__(self, stored: StoredRun) -> None:
        super().__init__()
        self.stored = stored

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="detail-title")
        with Horizontal(id="detail-body"):
            yield DataTable(id="settings", show_header=False, cursor_type="none")
            with Vertical():
                yield LossPlot(id="detail-plot")
                yield AccuracyGrid(id="detail-grid")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#settings", DataTable)
        table.add_columns("field", "value")
        for key, value in self.stored.config.items():
            if value is not None:
                table.add_row(key, str(value))
        record = self.stored.record
        for key in RECORD_KEYS:
            if record.get(key):
                value = str(record[key])
                table.add_row(key, minute(value) if key.endswith("_at") else value)
        git = record.get("git") or {}
        if git:
            table.add_row(
                "git", f"{git.get('commit', '')[:12]}{' dirty' if git.get('dirty') else ''}"
            )
        self.refresh_run()
        if self.stored.status not in ("finished", "failed", "diverged"):
            self.set_interval(1.0, self.refresh_run)

    def refresh_run(self) -> None:
        self.stored = read_run(self.stored.folder)
        stored = self.stored
        run = LiveRun.from_events(stored.run_id, stored.events(), stored.status)
        average = stored.result["average"] if stored.result else run.average
        title = f"[b]{stored.run_id}[/]  {run.status}"
        if average is not None:
            title += f"  average {average:.1f}"
        if run.error:
            title += f"  [red]{run.error}[/]"
        self.query_one("#detail-title", Static).update(title)
        self.query_one("#detail-plot", LossPlot).show(run)
        self.query_one("#detail-grid", AccuracyGrid).show(run.per_language, average)

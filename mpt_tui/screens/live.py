"""Runs launched from the app: the queue, and for the selected run its progress, live loss
curves, dev accuracy and, once tested, the 15-language grid."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, ProgressBar, Static

from mpt_engine.run_state import RunState, RunStatus
from mpt_tui.widgets.accuracy_grid import AccuracyGrid
from mpt_tui.widgets.loss_plot import LossPlot

# How each status looks, on every screen (the results browser too).
STATUS_STYLES = {
    RunStatus.NEW: "dim",
    RunStatus.QUEUED: "dim",
    RunStatus.PENDING: "dim",
    RunStatus.INCOMPLETE: "yellow",
    RunStatus.RUNNING: "bold cyan",
    RunStatus.TESTING: "bold cyan",
    RunStatus.FINISHED: "green",
    RunStatus.FAILED: "bold red",
    RunStatus.DIVERGED: "bold red",
    RunStatus.UNREADABLE: "bold red",
    RunStatus.INTERRUPTED: "yellow",
    RunStatus.CANCELLED: "yellow",
    RunStatus.SKIPPED: "yellow",
}
ACTIVE = (RunStatus.RUNNING, RunStatus.TESTING)


class QueueTable(DataTable):
    """The queue: moving its cursor by hand keeps the chosen run in view (the screen otherwise
    follows the newest run that trains)."""

    def _chose(self) -> None:
        self.screen.pinned = True

    def action_cursor_up(self) -> None:
        self._chose()
        super().action_cursor_up()

    def action_cursor_down(self) -> None:
        self._chose()
        super().action_cursor_down()

    def _on_click(self, event) -> None:
        self._chose()
        return super()._on_click(event)


class LiveScreen(Screen):
    AUTO_FOCUS = "#queue"
    BINDINGS = [("c", "app.cancel_runs", "Cancel runs")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield QueueTable(id="queue", cursor_type="row", zebra_stripes=True)
        with Vertical(id="current"):
            yield Static("nothing launched yet: press 1 for the launcher", id="run-status")
            yield ProgressBar(id="run-progress", show_eta=False)
            yield LossPlot(id="loss-plot")
            yield AccuracyGrid(id="accuracy-grid")
        yield Footer()

    def on_mount(self) -> None:
        queue = self.query_one("#queue", DataTable)
        queue.add_column("run", key="run")
        queue.add_column("status", key="status")
        queue.add_column(Text("done", justify="right"), key="done")
        queue.add_column(Text("dev", justify="right"), key="dev")
        queue.add_column(Text("avg", justify="right"), key="avg")
        self.selected: str | None = None
        self.pinned = False  # a run chosen by hand stays in view until runs are launched again
        self.watch(self.app, "runs_changed", lambda _: self.refresh_view())  # calls it now too

    def on_screen_resume(self) -> None:
        self.pinned = False  # back here (after a launch, say): follow the work again
        self.refresh_view()

    @on(DataTable.RowHighlighted, "#queue")
    def _select(self, event: DataTable.RowHighlighted) -> None:
        if self.pinned and event.row_key.value != self.selected:
            self.selected = event.row_key.value
            self.refresh_view(force=True)

    def refresh_view(self, force: bool = False) -> None:
        runs: dict[str, RunState] = self.app.runs
        queue = self.query_one("#queue", DataTable)
        for run_id, run in runs.items():
            cells = _queue_cells(run)
            if run_id in queue.rows:
                for key, cell in zip(("status", "done", "dev", "avg"), cells[1:], strict=True):
                    queue.update_cell(run_id, key, cell, update_width=True)
            else:
                queue.add_row(*cells, key=run_id)
        self._follow_the_work(runs)
        self._show(runs.get(self.selected), force)

    def _follow_the_work(self, runs: dict[str, RunState]) -> None:
        """Show the newest run that trains unless the one shown still does or was chosen by
        hand (with none training, the newest run)."""
        current = runs.get(self.selected)
        if current is not None and (self.pinned or current.status in ACTIVE):
            return
        active = [run_id for run_id, run in runs.items() if run.status in ACTIVE]
        newest = active[-1] if active else next(reversed(runs), None)
        if newest is not None and (current is None or active):
            self.selected = newest
            queue = self.query_one("#queue", DataTable)
            if newest in queue.rows:
                queue.move_cursor(row=queue.get_row_index(newest))

    def _show(self, run: RunState | None, force: bool) -> None:
        status = self.query_one("#run-status", Static)
        progress = self.query_one("#run-progress", ProgressBar)
        plot = self.query_one("#loss-plot", LossPlot)
        grid = self.query_one("#accuracy-grid", AccuracyGrid)
        progress.display = run is not None
        if run is None:
            return
        if plot.run is not run:
            plot.show(run)
        else:
            plot.redraw(force)
        # Always a total: without one the bar pulses, as if a failed or queued run were working.
        progress.update(total=run.total_steps or 1, progress=len(run.steps))
        status.update(_status_line(run))
        grid.show(run.per_language, run.average, run.task)


def _queue_cells(run: RunState) -> list:
    style = STATUS_STYLES.get(run.status, "")
    dev = run.best_dev
    return [
        run.run_id,
        Text(run.status, style=style),
        Text(f"{100 * run.progress:.0f}%", justify="right"),
        Text("" if dev is None else f"{dev:.1f}", justify="right"),
        Text("" if run.average is None else f"{run.average:.1f}", justify="right"),
    ]


def _status_line(run: RunState) -> Text:
    line = Text()
    line.append(run.run_id, style="bold")
    line.append(f"  {run.status}", style=STATUS_STYLES.get(run.status, ""))
    if run.steps:
        step = run.steps[-1]
        kl = "" if step.kl is None else f" kl {step.kl:.4f}"
        line.append(f"  epoch {step.epoch} step {step.step}/{run.total_steps}")
        line.append(f"  loss {step.loss:.4f} ce {step.ce:.4f}{kl}")
    if run.dev:
        history = " ".join(f"{event.accuracy:.1f}" for event in run.dev[-8:])
        line.append(f"  dev by epoch {history} (best {run.dev[-1].best_accuracy:.1f})")
    if run.eta_seconds is not None:
        line.append(f"  eta {run.eta_seconds:.0f} s", style="dim")
    if run.error:
        line.append(f"  {run.error}", style="red")
    return line

"""The results browser: every run in the store (headless ones too, refreshed live), Table I,
Figure 3's family gains, a comparison with p-values, and export of the table in view."""

from __future__ import annotations

import importlib

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    Static,
    Switch,
    TabbedContent,
    TabPane,
)

from mpt_engine.errors import MptError
from mpt_engine.grouping import run_settings
from mpt_engine.record import minute
from mpt_engine.reports import compare, families, runs_table, table1
from mpt_engine.results import StoredRun, parse_where, select
from mpt_engine.run_state import RunState, RunStatus
from mpt_engine.stats import TTest
from mpt_engine.store import RunStore
from mpt_engine.tables import COLLAPSE_MARK, COLLAPSED_RUN_NOTE, ResultTable
from mpt_tui.screens.confirm import ConfirmScreen
from mpt_tui.screens.export import ExportScreen
from mpt_tui.screens.live import STATUS_STYLES
from mpt_tui.screens.run_detail import RunDetailScreen
from mpt_tui.widgets import report_table
from mpt_tui.wording import in_app_words

RUN_COLUMNS = ("run", "method", "shots", "seed", "avg", "status", "started", "setting")
PAGE_ROWS = 200  # runs drawn at once: a DataTable of 10,000 rows takes seconds to fill


class ResultsScreen(Screen):
    AUTO_FOCUS = "#runs"
    BINDINGS = [
        ("e", "export", "Export"),
        ("slash", "focus_filter", "Filter"),
        ("s", "sort", "Sort"),
        ("d", "remove", "Remove run"),
        ("right_square_bracket", "page(1)", "Next page"),
        ("left_square_bracket", "page(-1)", "Prev page"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(
            placeholder="/ filter: method=mpt shots=64 seed=1-3, or part of a run id",
            id="filter",
            compact=True,
        )
        with TabbedContent(id="tabs"):
            with TabPane("Runs", id="tab-runs"):
                yield Static(id="runs-note", classes="note")
                yield DataTable(id="runs", cursor_type="cell", zebra_stripes=True)
            with TabPane("Table I", id="tab-table1"):
                yield Static(id="table1-note", classes="note")
                yield DataTable(id="table1", cursor_type="cell")
            with TabPane("Families", id="tab-families"):
                yield Static(id="families-note", classes="note")
                yield DataTable(id="families", cursor_type="row")
            with TabPane("Compare", id="tab-compare"):
                with Horizontal(id="compare-inputs"):
                    yield Input(placeholder="A: method=sp,shots=64", id="compare-a")
                    yield Input(placeholder="B: method=mpt,shots=64", id="compare-b")
                    with Vertical(id="paired-box"):
                        yield Label("paired")
                        yield Switch(id="paired")
                yield Static(id="compare-note", classes="note")
                yield DataTable(id="compare", cursor_type="cell")
        yield Footer()

    def on_mount(self) -> None:
        self.runs: list[StoredRun] = []
        self.selected: list[StoredRun] = []  # the filter's runs
        self.settings: dict[str, str] = {}  # run id -> what sets it apart among them
        self.filter_problem: str | None = None  # why the filter selects nothing
        self.sort = ("started", False)
        self.page = 0
        self.tables: dict[str, ResultTable | None] = {}
        self.stale: set[str] = set()  # report tabs to fill when next shown
        self.warned = False
        self.watch(self.app, "store_changed", self._store_changed, init=False)
        # scipy takes seconds to import: in a thread now, not in the first comparison.
        self.run_worker(
            lambda: importlib.import_module("scipy.stats"),
            thread=True,
            group="warm-up",
            exit_on_error=False,
        )

    # -- data ------------------------------------------------------------------------------

    def _store_changed(self) -> None:
        if self.is_current:  # else when shown again
            self.reload()

    def on_screen_resume(self) -> None:
        self.reload()
        if isinstance(self.focused, Input):  # keys are commands on return, not typing
            tab = self.query_one("#tabs", TabbedContent).active
            self.query_one(f"#{tab.removeprefix('tab-')}", DataTable).focus()

    def reload(self) -> None:
        """The runs as the app's store index has them (it rereads what changed)."""
        runs = self.app.index.runs()
        if runs is self.runs:  # the index has not changed since
            return
        self.runs = runs
        warnings = self.app.index.warnings()
        if warnings and not self.warned:
            self.notify("\n".join(warnings[:3]), title="skipped folders", severity="warning")
            self.warned = True
        self.rebuild()

    def selected_runs(self) -> list[StoredRun]:
        where, words = {}, []
        for token in self.query_one("#filter", Input).value.replace(",", " ").split():
            if "=" in token:
                where.update(parse_where(token))
            else:
                words.append(token)
        runs = select(self.runs, where)
        return [run for run in runs if all(word in run.run_id for word in words)]

    def rebuild(self) -> None:
        filter_input = self.query_one("#filter", Input)
        try:
            runs, self.filter_problem = self.selected_runs(), None
        except (MptError, ValueError) as problem:  # no rows it did not select
            runs, self.filter_problem = [], in_app_words(problem)
        filter_input.set_class(self.filter_problem is not None, "invalid")
        filter_input.tooltip = self.filter_problem
        self.selected = runs
        self.settings = dict(zip((run.run_id for run in runs), run_settings(runs), strict=True))
        self._fill_runs()
        self.stale = {"tab-table1", "tab-families", "tab-compare"}
        self._fill_shown_tab()

    def _fill_shown_tab(self) -> None:
        """A report tab is built when it is shown: Table I of 10,000 runs is not free."""
        tab = self.query_one("#tabs", TabbedContent).active
        if tab not in self.stale:
            return
        self.stale.discard(tab)
        runs = self.selected
        if tab == "tab-table1":
            self.tables[tab] = self._report("table1", lambda: table1(runs))
        elif tab == "tab-families":
            self.tables[tab] = self._report("families", lambda: families(runs))
        else:
            self._fill_compare()

    def _fill_runs(self) -> None:
        """The page of the selected runs in the current order."""
        table = self.query_one("#runs", DataTable)
        cursor = table.cursor_coordinate
        table.clear(columns=True)
        column, reverse = self.sort
        for name in RUN_COLUMNS:  # the sorted column says which way
            arrow = (" ▼" if reverse else " ▲") if name == column else ""
            table.add_column(name + arrow, key=name)
        ordered = self.ordered()
        pages = max(1, -(-len(ordered) // PAGE_ROWS))
        self.page = min(self.page, pages - 1)
        first = self.page * PAGE_ROWS
        shown = ordered[first : first + PAGE_ROWS]
        for run in shown:
            table.add_row(*_run_cells(run, self.settings[run.run_id]), key=run.run_id)
        said = []
        if self.filter_problem:
            said.append(f"filter: {self.filter_problem}")
        elif pages > 1:
            said.append(
                f"runs {first + 1:,}–{first + len(shown):,} of {len(ordered):,} · "
                f"page {self.page + 1} of {pages}: ] next, [ previous · / narrows the list"
            )
        if any(run.collapsed for run in shown):
            said.append(COLLAPSED_RUN_NOTE)
        note = self.query_one("#runs-note", Static)
        note.display = bool(said)
        note.update(" · ".join(said))
        if table.row_count:
            table.move_cursor(row=min(cursor.row, table.row_count - 1), column=cursor.column)
        self.refresh_bindings()

    def ordered(self) -> list[StoredRun]:
        """The selected runs in the order on screen."""
        column, reverse = self.sort
        key, settings = SORT_KEYS[column], self.settings
        return sorted(self.selected, key=lambda r: key(r, settings[r.run_id]), reverse=reverse)

    def action_page(self, step: int) -> None:
        self.page = max(0, self.page + step)
        self._fill_runs()

    def _report(self, name: str, build) -> ResultTable | None:
        note = self.query_one(f"#{name}-note", Static)
        widget = self.query_one(f"#{name}", DataTable)
        try:
            table = build()
        except MptError as problem:
            widget.clear(columns=True)
            note.update(Text(in_app_words(problem), style="dim"))
            return None
        report_table.fill(widget, table)
        note.update(f"[b]{table.title}[/]  [dim]{' · '.join(table.footnotes())}[/]")
        return table

    @on(Input.Changed, "#compare-a, #compare-b")
    @on(Switch.Changed, "#paired")
    def _fill_compare(self) -> None:
        first = self.query_one("#compare-a", Input).value.strip()
        second = self.query_one("#compare-b", Input).value.strip()
        if not (first and second):
            self.query_one("#compare", DataTable).clear(columns=True)
            self.query_one("#compare-note", Static).update("[dim]type two selections to compare[/]")
            self.tables["tab-compare"] = None
            return
        test = TTest.PAIRED if self.query_one("#paired", Switch).value else TTest.WELCH

        def build() -> ResultTable:
            runs = self.selected_runs()
            chosen = [select(runs, parse_where(text)) for text in (first, second)]
            return compare(*chosen, (first, second), test)

        self.tables["tab-compare"] = self._report("compare", build)

    # -- interaction -----------------------------------------------------------------------

    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self.rebuild()

    @on(DataTable.HeaderSelected, "#runs")
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        self.sort_by(str(event.column_key.value))

    def action_sort(self) -> None:
        """Sort the runs by the column under the cursor."""
        self.sort_by(RUN_COLUMNS[self.query_one("#runs", DataTable).cursor_column])

    def sort_by(self, column: str) -> None:
        """Sort the runs by `column`; if they are already, the other way."""
        self.sort = (column, not self.sort[1] if self.sort[0] == column else False)
        self._fill_runs()

    def action_remove(self) -> None:
        """Ask, then move the run under the cursor to the trash ($MPT_HOME/trash)."""
        table = self.query_one("#runs", DataTable)
        if not table.row_count:
            return
        run_id = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        question = f"Move run {run_id} to the trash? (it stays in $MPT_HOME/trash)"
        self.app.push_screen(
            ConfirmScreen(question, "Remove", "Keep"),
            lambda confirmed: self._remove(run_id) if confirmed else None,
        )

    def _remove(self, run_id: str) -> None:
        try:
            moved = RunStore().remove(run_id)
        except MptError as problem:  # training right now, or gone already
            self.notify(in_app_words(problem), severity="error")
            return
        self.notify(f"removed {run_id} (kept in {moved})")
        self.app.follow_store()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        on_runs = self.query_one("#tabs", TabbedContent).active == "tab-runs"
        if action in ("sort", "remove"):  # only the runs (report tables keep the paper's order)
            return on_runs
        if action == "page":
            return on_runs and len(self.selected) > PAGE_ROWS
        return True

    @on(TabbedContent.TabActivated)
    def _tab_changed(self) -> None:
        self.refresh_bindings()
        self._fill_shown_tab()

    @on(DataTable.CellSelected, "#runs")
    def _open(self, event: DataTable.CellSelected) -> None:
        self._open_run(event.cell_key.row_key.value)

    def action_open(self) -> None:
        """Open the run under the cursor."""
        table = self.query_one("#runs", DataTable)
        if table.row_count:
            self._open_run(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def _open_run(self, run_id) -> None:
        run = next((r for r in self.runs if r.run_id == run_id), None)
        if run is not None:
            self.app.push_screen(RunDetailScreen(run))

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_export(self) -> None:
        tab = self.query_one("#tabs", TabbedContent).active
        table = runs_table(self.ordered()) if tab == "tab-runs" else self.tables.get(tab)
        if table is None:
            self.notify("nothing to export in this tab", severity="warning")
            return
        name = "mpt-" + tab.removeprefix("tab-")

        def exported(path) -> None:
            if path is not None:
                self.notify(f"wrote {path}")

        self.app.push_screen(ExportScreen(table, name), exported)


def _progress(run: StoredRun) -> str:
    """For a run being trained (by any process), how far it got: "running 42%", or "testing"
    once its training steps are done and its test sets are read."""
    if run.status is not RunStatus.RUNNING:
        return ""
    state = RunState.from_events(run.run_id, run.events(), run.status)
    if state.per_language:
        return f"testing {len(state.per_language)}/{len(state.task.languages)}"
    return f"running {100 * state.progress:.0f}%" if state.steps else "running"


def _run_cells(run: StoredRun, setting: str) -> list:
    status = _progress(run) or run.status
    style = STATUS_STYLES.get(run.status, "red")
    average = "" if run.average is None else f"{run.average:.1f}"
    average += COLLAPSE_MARK if run.collapsed else ""
    return [
        run.run_id,
        str(run.config.get("method", "?")),
        Text(str(run.config.get("shots", "?")), justify="right"),
        Text(str(run.config.get("seed", "?")), justify="right"),
        Text(average, justify="right"),
        Text(status, style=style),
        minute(run.started_at)[5:],
        Text(setting, style="dim" if setting == "—" else ""),  # what sets it apart
    ]


SORT_KEYS = {
    "run": lambda run, setting: run.run_id,
    "method": lambda run, setting: str(run.config.get("method")),
    "shots": lambda run, setting: run.config.get("shots") or 0,
    "seed": lambda run, setting: run.config.get("seed") or 0,
    "avg": lambda run, setting: run.average if run.average is not None else -1.0,
    "status": lambda run, setting: run.status,
    "started": lambda run, setting: run.started_at,
    "setting": lambda run, setting: setting,
}

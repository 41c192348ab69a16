"""The Textual app: launcher, live runs and results browser as modes, a help screen, and the
command palette. Runs train in worker processes (mpt_engine.worker) driven by a thread worker,
so training never blocks or crashes the interface."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Sequence

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Input

from mpt_engine.config import RunConfig
from mpt_engine.event_log import read_events
from mpt_engine.events import RunSkipped
from mpt_engine.results import StoredRun
from mpt_engine.run_state import UNFINISHED, RunState, RunStatus
from mpt_engine.store import RunStore, pending_runs
from mpt_engine.store_index import StoreIndex
from mpt_engine.tables import count
from mpt_tui.messages import QueueFinished, RunUpdate, SlurmUpdate
from mpt_tui.screens.confirm import ConfirmScreen
from mpt_tui.screens.help import HelpScreen
from mpt_tui.screens.launcher import LauncherScreen
from mpt_tui.screens.live import LiveScreen
from mpt_tui.screens.results import ResultsScreen
from mpt_tui.wording import in_app_words

STORE_POLL_SECONDS = 1.0


class MptApp(App):
    TITLE = "mpt"
    SUB_TITLE = "Multilingual Prompt Translator"
    CSS_PATH = "mpt.tcss"
    MODES = {"launch": LauncherScreen, "live": LiveScreen, "results": ResultsScreen}
    DEFAULT_MODE = "launch"
    # Function keys work everywhere, digits and q when no text field has the focus.
    BINDINGS = [
        Binding("f2,1", "switch_mode('launch')", "Launch", key_display="F2", priority=False),
        Binding("f3,2", "switch_mode('live')", "Runs", key_display="F3"),
        Binding("f4,3", "switch_mode('results')", "Results", key_display="F4"),
        Binding("f1,question_mark", "help", "Help", key_display="F1"),
        Binding("ctrl+t", "toggle_dark", "Theme", show=False),
        Binding("escape", "leave_field", "Leave field", show=False),
        Binding("q", "quit", "Quit"),
    ]

    runs_changed: var[int] = var(0)  # bumped whenever `runs` changes; the live screen watches
    store_changed: var[int] = var(0)  # bumped whenever `index` changes; the other screens watch

    def __init__(self) -> None:
        super().__init__()
        self.index = StoreIndex(RunStore())  # every run in the store, headless ones too
        self.runs: dict[str, RunState] = {}
        self.launched: dict[str, RunConfig] = {}  # the configs of the runs queued here
        self.pool = None
        self.slurm_configs: list[RunConfig] = []  # runs this app submitted to Slurm
        self.elsewhere: list[RunConfig] = []  # runs another process trains (another grid)
        self.headless: dict[str, StoredRun] = {}  # runs trained outside the app, as last read
        self.batch: list[str] = []  # the runs of the latest launch
        self.polling = False

    # -- the store -------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.follow_store()  # the first read, off the UI thread: seconds for a large store
        self.set_interval(STORE_POLL_SECONDS, self.follow_store)

    @work(thread=True, exclusive=True, group="store-follow", exit_on_error=False)
    def follow_store(self) -> None:
        """Reread the runs whose folders changed (stat calls when none did)."""
        if self.index.refresh():
            self.call_from_thread(self._store_refreshed)

    def _store_refreshed(self) -> None:
        if not self.store_changed:  # the first read: objects that live as long as the app
            gc.freeze()  # are no longer scanned by each collection (pauses at 10,000 runs)
        self.store_changed += 1
        self._follow_headless_runs()

    def _follow_headless_runs(self) -> None:
        """Runs that another process trains (`mpt run`, `mpt grid` in another terminal) join the
        Runs screen while they train, and stay there, followed from the store, once they end."""
        ours = {*self.launched, *(config.run_id for config in self.slurm_configs)}
        changed = False
        for stored in self.index.runs():
            run_id = stored.run_id
            followed = run_id in self.headless
            if run_id in ours or not (followed or stored.status is RunStatus.RUNNING):
                continue
            if followed and self.headless[run_id] is stored:
                continue  # its folder has not changed
            self.headless[run_id] = stored
            self.runs[run_id] = RunState.from_events(run_id, stored.events(), stored.status)
            changed = True
        if changed:
            self.runs_changed += 1

    # -- runs ------------------------------------------------------------------------------

    def launch(
        self, configs: Sequence[RunConfig], slots: Sequence[str] = (), per_slot: int = 1
    ) -> None:
        """Queue the runs that are not finished yet and show them training, in `per_slot`
        worker processes per GPU slot (without GPUs: sharing the CPU)."""
        store = RunStore()
        todo = pending_runs(configs, store.status)
        if not todo:
            self.notify("every run of this selection is already finished")
            return
        if self.pool is not None:
            self.notify("runs are still going: cancel them (c) or wait", severity="warning")
            return
        self.launched.update((config.run_id, config) for config in todo)
        self.batch = [config.run_id for config in todo]  # what "queue done" counts
        for config in todo:
            self.runs[config.run_id] = RunState(config.run_id)
        self.runs_changed += 1
        self.train(todo, list(slots) or [None], per_slot)
        self.switch_mode("live")

    @work(thread=True, exclusive=True, group="runs", exit_on_error=False)
    def train(
        self, configs: Sequence[RunConfig], slots: Sequence[str | None], per_slot: int
    ) -> None:
        from mpt_engine.launch import ProcessPool

        self.pool = ProcessPool(configs, RunStore(), slots, per_slot=per_slot)
        try:
            for run_id, event in self.pool.updates():
                self.post_message(RunUpdate(run_id, event))
        finally:
            self.pool = None
            self.post_message(QueueFinished())

    def on_run_update(self, message: RunUpdate) -> None:
        run = self.runs.get(message.run_id)
        if run is None:
            return
        run.update(message.event)
        if isinstance(message.event, RunSkipped):
            self._from_the_store(self.launched[message.run_id], skipped=run)
        self.runs_changed += 1

    def _from_the_store(self, config: RunConfig, skipped: RunState) -> None:
        """A run left to another process (another grid on this store) is what the store says:
        finished by it, or followed from its events while it trains; skipped only when
        neither."""
        store = RunStore()
        status = store.status(config.run_id)
        if status not in (RunStatus.FINISHED, RunStatus.RUNNING):
            return
        events = read_events(store.folder(config.run_id) / "events.jsonl")
        run = RunState.from_events(config.run_id, events, RunStatus.INCOMPLETE)
        run.status = status
        self.runs[config.run_id] = run
        if status == RunStatus.RUNNING:
            run.error = skipped.error  # who trains it
            self.elsewhere.append(config)
            self._poll_the_store()

    def on_queue_finished(self, _: QueueFinished) -> None:
        batch = [self.runs[run_id] for run_id in self.batch if run_id in self.runs]
        for run in batch:
            if run.status is RunStatus.QUEUED:
                run.status = RunStatus.CANCELLED
        done = sum(run.status is RunStatus.FINISHED for run in batch)
        elsewhere = {config.run_id for config in self.elsewhere}
        training = sum(run.status in UNFINISHED for run in batch if run.run_id in elsewhere)
        self.runs_changed += 1
        note = f"; {training} training in another process" if training else ""
        self.notify(f"queue done: {done} of {count(len(batch), 'run')} finished{note}")

    def submit(self, configs: Sequence[RunConfig], options) -> None:
        """Submit the runs as a Slurm job array and follow them from the shared store."""
        self.submit_to_slurm(list(configs), options)
        self.switch_mode("live")

    @work(thread=True, group="slurm", exit_on_error=False)
    def submit_to_slurm(self, configs: list[RunConfig], options) -> None:
        from mpt_engine.errors import MptError
        from mpt_engine.slurm import submit

        try:
            records = submit(configs, RunStore(), options)
        except MptError as problem:
            self.call_from_thread(self.notify, in_app_words(problem), severity="error")
            return
        submitted = {record["run_id"] for record in records}
        self.call_from_thread(self._follow_slurm, [c for c in configs if c.run_id in submitted])

    def _follow_slurm(self, configs: list[RunConfig]) -> None:
        if not configs:
            self.notify("nothing to submit: every run is finished, queued or running")
            return
        for config in configs:
            self.runs[config.run_id] = RunState(config.run_id, status=RunStatus.PENDING)
        self.slurm_configs += configs
        self.runs_changed += 1
        self.notify(f"submitted {len(configs)} runs to Slurm")
        self._poll_the_store()

    def _poll_the_store(self) -> None:
        if not self.polling:
            self.polling = True
            self.set_interval(2.0, self.poll_store)

    @work(thread=True, exclusive=True, group="store-poll", exit_on_error=False)
    def poll_store(self) -> None:
        """The states of the runs trained elsewhere (Slurm, another grid), from the scheduler
        and the store, and their progress from events.jsonl."""
        from mpt_engine.slurm import grid_status

        store = RunStore()
        updated = {}
        for config, status, _ in grid_status([*self.slurm_configs, *self.elsewhere], store):
            events = read_events(store.folder(config.run_id) / "events.jsonl")
            updated[config.run_id] = RunState.from_events(config.run_id, events, status)
        self.post_message(SlurmUpdate(updated))

    def on_slurm_update(self, message: SlurmUpdate) -> None:
        self.runs.update(message.runs)
        self.runs_changed += 1

    def _active_slurm(self) -> list[RunConfig]:
        """This app's Slurm runs still queued or running."""
        active = {run.run_id for run in self.runs.values() if run.status in UNFINISHED}
        return [config for config in self.slurm_configs if config.run_id in active]

    def action_cancel_runs(self) -> None:
        """Ask, then stop the running children and drop the queued runs, and cancel this app's
        Slurm tasks still queued or running."""
        if self.pool is None and not self._active_slurm():
            self.notify("nothing is running")
            return
        unfinished = sum(run.status in UNFINISHED for run in self.runs.values())
        question = f"Cancel {unfinished} unfinished run{'s' if unfinished != 1 else ''}?"
        self.push_screen(
            ConfirmScreen(question, "Cancel them", "Keep going"), self._cancel_confirmed
        )

    def _cancel_confirmed(self, confirmed: bool | None) -> None:
        if not confirmed:
            return
        pool, slurm = self.pool, self._active_slurm()
        if pool is not None:
            self.run_worker(pool.cancel, thread=True, group="cancel")
        if slurm:
            from mpt_engine.slurm import cancel

            self.run_worker(lambda: cancel(slurm, RunStore()), thread=True, group="cancel")
        self.notify("cancelling: running children stop, queued runs are dropped")

    async def action_quit(self) -> None:
        """Quit at once when nothing trains here; else ask first (Slurm runs go on anyway)."""
        if isinstance(self.screen, ConfirmScreen):
            return  # already asking
        if self.pool is None:
            self.exit()
            return
        question = "Runs are training here: quit and stop them?"
        self.push_screen(ConfirmScreen(question, "Quit", "Keep going"), self._quit_confirmed)

    def _quit_confirmed(self, confirmed: bool | None) -> None:
        if not confirmed:
            return
        pool = self.pool
        if pool is not None:
            pool.cancel()  # children record themselves as interrupted; none is left behind
        self.exit()

    # -- conventions -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The screen in view needs no key in the footer (and at 80 columns there is no room).
        return not (action == "switch_mode" and parameters == (self.current_mode,))

    def action_leave_field(self) -> None:
        """Escape leaves a text field for the screen's main widget, so that keys are commands
        again (`e` exports instead of typing an e)."""
        if not isinstance(self.focused, Input):
            return
        auto = self.screen.AUTO_FOCUS
        target = self.screen.query(auto).first() if auto and self.screen.query(auto) else None
        if target is not None and target is not self.focused:
            target.focus()
        else:
            self.screen.set_focus(None)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Launcher", "Choose and launch runs", lambda: self.switch_mode("launch")
        )
        yield SystemCommand(
            "Live runs", "The queue and the run training now", lambda: self.switch_mode("live")
        )
        yield SystemCommand(
            "Results",
            "Browse runs, Table I, families, comparisons",
            lambda: self.switch_mode("results"),
        )
        yield SystemCommand(
            "Cancel runs", "Stop running children, drop queued runs", self.action_cancel_runs
        )
        if isinstance(screen, ResultsScreen):
            yield SystemCommand(
                "Sort runs", "By the column under the cursor; again: reverse", screen.action_sort
            )
            yield SystemCommand(
                "Filter runs", "field=value, or part of a run id", screen.action_focus_filter
            )
            yield SystemCommand(
                "Export table",
                "The table in view: CSV, Markdown, LaTeX, JSON",
                screen.action_export,
            )
            yield SystemCommand("Open run", "The run under the cursor", screen.action_open)
            yield SystemCommand(
                "Remove run", "Move it to $MPT_HOME/trash, after asking", screen.action_remove
            )
        yield SystemCommand("Help", "Screens and keys", self.action_help)
        yield SystemCommand("Light or dark", "Switch the theme", self.action_toggle_dark)

"""Rich rendering of a run's events for the terminal: live progress and the result table."""

from __future__ import annotations

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from mpt_engine.events import (
    DevEvaluated,
    Event,
    RunFinished,
    RunSkipped,
    RunStarted,
    TrainStep,
)
from mpt_engine.run_state import UNFINISHED, RunState, RunStatus
from mpt_engine.tables import count


def progress_bars(description: str, bar_width: int, *extra) -> Progress:
    """Bars with a description, done/total, elapsed time and ETA, then any extra columns."""
    return Progress(
        TextColumn(description),
        BarColumn(bar_width=bar_width),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        *extra,
    )


class LiveDisplay:
    """A rich Live display of the non-empty `parts()`, used as a context manager."""

    def __init__(self, console: Console):
        self.live = Live(console=console, get_renderable=lambda: Group(*self.parts()))

    def parts(self) -> list:
        raise NotImplementedError

    def __enter__(self):
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.live.__exit__(*exc)
        if not self.live.console.is_terminal and self.parts():
            self.live.console.line()  # rich ends its last render with a newline on terminals only


class RunProgress(LiveDisplay):
    """Consumes events into the run's state; shows step progress with ETA, the losses and the
    dev accuracy on stderr."""

    def __init__(self, console: Console):
        self.progress = progress_bars("[bold]{task.description:<5}", 30)
        self.state: RunState | None = None
        self.test_task = None
        super().__init__(console)

    @property
    def result(self) -> dict | None:
        return self.state.result if self.state else None

    def parts(self) -> list:
        if self.state is None:
            return []
        lines = []
        if self.state.steps:
            step = self.state.steps[-1]
            kl = "" if step.kl is None else f"  kl {step.kl:.4f}"
            lines.append(f"epoch {step.epoch}  loss {step.loss:.4f}  ce {step.ce:.4f}{kl}")
        if self.state.dev:
            dev = self.state.dev[-1]
            lines.append(
                f"dev accuracy {dev.accuracy:.1f}  "
                f"(best {dev.best_accuracy:.1f} at epoch {dev.best_epoch})"
            )
        return [self.progress, *map(Text, lines)]

    def update(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.state = RunState(event.run_id)
            self.live.console.print(
                f"[bold]{event.run_id}[/] on {event.device}: "
                f"{count(event.epochs, 'epoch')} x {count(event.steps_per_epoch, 'step')}"
            )
            self.train_task = self.progress.add_task(
                "train", total=event.epochs * event.steps_per_epoch
            )
        if self.state is None:
            return
        self.state.update(event)
        self.progress.update(self.train_task, completed=len(self.state.steps))
        if self.state.per_language and self.state.status is RunStatus.TESTING:
            if self.test_task is None:
                languages = len(self.state.task.languages)
                self.test_task = self.progress.add_task("test", total=languages)
            self.progress.update(self.test_task, completed=len(self.state.per_language))


class GridProgress(LiveDisplay):
    """Overall progress of a grid, a bar per active run, and a line per run as it ends."""

    def __init__(self, console: Console, total: int):
        self.progress = progress_bars(
            "[bold]{task.description}", 24, TextColumn("{task.fields[status]}")
        )
        self.grid_task = self.progress.add_task("grid", total=total, status="")
        super().__init__(console)
        self.active: dict[str, int] = {}
        self.states: dict[str, RunState] = {}
        self.finished = 0
        self.failed: list[str] = []

    def parts(self) -> list:
        return [self.progress]

    def update(self, run_id: str, event: Event) -> None:
        state = self.states.setdefault(run_id, RunState(run_id))
        state.update(event)
        if isinstance(event, RunStarted):
            self.active[run_id] = self.progress.add_task(run_id, total=state.total_steps, status="")
        elif isinstance(event, TrainStep | DevEvaluated) and run_id in self.active:
            said = f"dev {state.dev[-1].accuracy:.1f}" if isinstance(event, DevEvaluated) else ""
            step = state.steps[-1] if state.steps else None
            self.progress.update(
                self.active[run_id],
                completed=len(state.steps),
                status=said or (f"e{step.epoch} loss {step.loss:.3f}" if step else ""),
            )
        elif state.status not in UNFINISHED:  # run_finished, run_failed or run_skipped
            del self.states[run_id]  # an ended run's steps are not kept for the whole grid
            if run_id in self.active:
                self.progress.remove_task(self.active.pop(run_id))
            if isinstance(event, RunFinished):
                self.finished += 1
                line = (
                    f"[green]done[/]   {run_id}  avg {event.average:.1f}  ({event.seconds:.0f} s)"
                )
            elif isinstance(event, RunSkipped):
                line = f"[yellow]skipped[/] {event.reason}"
            else:
                self.failed.append(run_id)
                line = f"[red]{event.status}[/] {run_id}  {event.error}"
            self.live.console.print(line, highlight=False)
            self.progress.update(
                self.grid_task,
                advance=1,
                status=f"{self.finished} done, {len(self.failed)} failed",
            )

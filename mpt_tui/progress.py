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
    RunFailed,
    RunFinished,
    RunSkipped,
    RunStarted,
    TestEvaluated,
    TrainStep,
)
from mpt_engine.languages import XNLI_LANGUAGES


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
    """Consumes events; shows step progress with ETA, the losses and the dev accuracy on stderr."""

    def __init__(self, console: Console):
        self.progress = progress_bars("[bold]{task.description:<5}", 30)
        self.losses = Text()
        self.dev = Text()
        self.result: dict | None = None
        self.test_task = None
        super().__init__(console)

    def parts(self) -> list:
        bars = [self.progress] if self.progress.tasks else []
        return bars + [text for text in (self.losses, self.dev) if text.plain]

    def update(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.live.console.print(
                f"[bold]{event.run_id}[/] on {event.device}: "
                f"{event.epochs} epochs x {event.steps_per_epoch} steps"
            )
            self.train_task = self.progress.add_task(
                "train", total=event.epochs * event.steps_per_epoch
            )
        elif isinstance(event, TrainStep):
            kl = "" if event.kl is None else f"  kl {event.kl:.4f}"
            self.losses.plain = f"epoch {event.epoch}  loss {event.loss:.4f}  ce {event.ce:.4f}{kl}"
            self.progress.update(self.train_task, completed=event.step)
        elif isinstance(event, DevEvaluated):
            self.dev.plain = (
                f"dev accuracy {event.accuracy:.1f}  "
                f"(best {event.best_accuracy:.1f} at epoch {event.best_epoch})"
            )
        elif isinstance(event, TestEvaluated):
            if self.test_task is None:
                self.test_task = self.progress.add_task("test", total=len(XNLI_LANGUAGES))
            self.progress.update(self.test_task, advance=1)
        elif isinstance(event, RunFinished):
            self.result = event.to_dict()


class GridProgress(LiveDisplay):
    """Overall progress of a grid, a bar per active run, and a line per run as it ends."""

    def __init__(self, console: Console, total: int):
        self.progress = progress_bars(
            "[bold]{task.description}", 24, TextColumn("{task.fields[status]}")
        )
        self.grid_task = self.progress.add_task("grid", total=total, status="")
        super().__init__(console)
        self.active: dict[str, int] = {}
        self.finished = 0
        self.failed: list[str] = []

    def parts(self) -> list:
        return [self.progress]

    def update(self, run_id: str, event: Event) -> None:
        if isinstance(event, RunStarted):
            total = event.epochs * event.steps_per_epoch
            self.active[run_id] = self.progress.add_task(run_id, total=total, status="")
        elif isinstance(event, TrainStep) and run_id in self.active:
            self.progress.update(
                self.active[run_id],
                completed=event.step,
                status=f"e{event.epoch} loss {event.loss:.3f}",
            )
        elif isinstance(event, DevEvaluated) and run_id in self.active:
            self.progress.update(self.active[run_id], status=f"dev {event.accuracy:.1f}")
        elif isinstance(event, RunFinished | RunFailed | RunSkipped):
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

"""Rich rendering of a run's events for the terminal: live progress and the result table."""

from __future__ import annotations

from rich import box
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
from rich.table import Table
from rich.text import Text

from mpt_engine.events import DevEvaluated, Event, RunFinished, RunStarted, TestEvaluated, TrainStep
from mpt_engine.languages import LANGUAGE_NAMES, XNLI_LANGUAGES


class RunProgress:
    """Consumes events; shows step progress with ETA, the losses and the dev accuracy on stderr."""

    def __init__(self, console: Console):
        self.progress = Progress(
            TextColumn("[bold]{task.description:<5}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        )
        self.losses = Text()
        self.dev = Text()
        self.live = Live(Group(self.progress, self.losses, self.dev), console=console)
        self.result: dict | None = None
        self.test_task = None

    def __enter__(self) -> RunProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.live.__exit__(*exc)

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


def result_table(result: dict, width: int = 120) -> Table:
    """Accuracy (%) per language and the average: in a row like the paper's Table I when the
    terminal is wide enough, else one language per line."""
    per_language = result["per_language"]
    method, shots, seed = result["method"].upper(), result["shots"], result["seed"]
    title = f"{method}  k={shots}  seed={seed}  {result['run_id']}"
    if width >= 84:  # 15 languages and the average, 5 characters each, fit
        table = Table(title=title, box=box.SIMPLE_HEAD, padding=0)
        for language in per_language:
            table.add_column(language.upper(), justify="right")
        table.add_column("Avg.", justify="right", style="bold")
        values = [*per_language.values(), result["average"]]
        table.add_row(*(f"{value:.1f}" for value in values))
        return table
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("language")
    table.add_column("accuracy", justify="right")
    for language, accuracy in per_language.items():
        table.add_row(f"{language.upper()}  {LANGUAGE_NAMES[language]}", f"{accuracy:.1f}")
    table.add_section()
    table.add_row("Avg.", f"{result['average']:.1f}", style="bold")
    return table

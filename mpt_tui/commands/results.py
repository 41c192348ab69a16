"""`mpt results`: browse the run store and build the paper's tables and figures from it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mpt_engine.config import Method
from mpt_engine.errors import InvalidInput
from mpt_engine.presets import ABLATIONS
from mpt_engine.stats import TTest
from mpt_tui.commands.common import (
    error_console,
    output_console,
    print_json,
    show_table,
    trackers_to_use,
    warn,
)

app = typer.Typer(
    help="Browse runs; the paper's tables, comparisons and figures; exports.",
    no_args_is_help=True,
)

Where = Annotated[
    str | None,
    typer.Option(
        "--where", "-w", help="select runs: field=value,... e.g. method=mpt,shots=64,seed=1-3"
    ),
]
TaskOnly = Annotated[
    str | None,
    typer.Option("--task", help="only the runs of this task: xnli, pawsx or a task file"),
]
Format = Annotated[
    str, typer.Option("--format", "-f", help="text, csv, md, latex or json (data alone on stdout)")
]


def _figure_path(path: Path | None) -> Path | None:
    from mpt_engine.figures import check_figure_path

    return check_figure_path(path)  # before any output


Plot = Annotated[
    Path | None,
    typer.Option(
        "--plot",
        help="also write the figure to a file (.png, .svg or .pdf)",
        callback=_figure_path,
    ),
]
Test = Annotated[
    TTest,
    typer.Option(
        "--test",
        help="welch (over seeds), paired (matched seeds) or, for Table II, columns: Student's "
        "t-test across the 16 column means, which reproduces the paper's Table II p-values",
    ),
]


def _runs(where: str | None, strict: bool = False, **fixed):
    import os

    from mpt_engine.config import is_task_file, stored_task
    from mpt_engine.results import load_runs, parse_where, select
    from mpt_engine.store import RunStore
    from mpt_engine.tasks import task_file

    if fixed.get("task"):  # a task file is stored by its absolute path
        if not is_task_file(fixed["task"]):
            task_file(fixed["task"])  # a built-in's name, or a typo named with the choices
        fixed["task"] = stored_task(fixed["task"])  # a file may be gone: its runs are kept
    store = RunStore()
    if not store.root.is_dir():  # a typo in MPT_HOME is not an empty store
        what = "MPT_HOME" if os.environ.get("MPT_HOME") else "the run store"
        try:
            store.home.mkdir(parents=True, exist_ok=True)  # as the first run would
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise InvalidInput(f"{what} {store.home} cannot be a run store ({reason})") from None
        warn([f"no runs yet in {store.home}"])
    runs, warnings = load_runs(store)
    warn(warnings)
    selection = parse_where(where or "")
    selection.update({key: str(value) for key, value in fixed.items() if value is not None})
    return select(runs, selection, strict)


def _figure(figure, plot: Path | None, fmt: str) -> None:
    if fmt == "text":
        from mpt_tui.plots import render

        console = output_console()
        console.print(render(figure, width=min(console.width, 100)))
    if plot is not None:
        from mpt_engine.figures import save_figure

        error_console().print(f"wrote {save_figure(figure, plot)}", highlight=False)


@app.command("list")
def list_runs(
    where: Where = None,
    method: Annotated[
        Method | None, typer.Option(help="ft, sp, pct or mpt", case_sensitive=False)
    ] = None,
    shots: Annotated[int | None, typer.Option(help="shots per class")] = None,
    seed: Annotated[int | None, typer.Option(help="seed")] = None,
    status: Annotated[
        str | None, typer.Option(help="finished, failed, diverged, interrupted or incomplete")
    ] = None,
    task: TaskOnly = None,
    fmt: Format = "text",
) -> None:
    """The runs in the store, oldest first."""
    from mpt_engine.reports import runs_table

    selected = _runs(where, method=method, shots=shots, seed=seed, status=status, task=task)
    table = runs_table(selected)
    show_table(table, fmt)


@app.command()
def show(
    run: Annotated[str, typer.Argument(help="run id, or a unique prefix of one")],
    plot: Plot = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="config, record, result, history")
    ] = False,
) -> None:
    """One run: config, record, per-language accuracies, loss history."""
    from mpt_engine.figures import loss_figure
    from mpt_engine.results import find_run
    from mpt_engine.slurm import submissions
    from mpt_engine.store import RunStore
    from mpt_tui.commands.options import rerun_line

    stored = find_run(RunStore(), run)
    events = stored.events()
    if as_json:
        history = [e for e in events if e.get("event") in ("train_step", "dev_evaluated")]
        print_json(
            {
                "run_id": stored.run_id,
                "status": stored.status,
                "folder": str(stored.folder),
                "config": stored.config,
                "record": stored.record,
                "result": stored.result,
                "slurm": submissions().get(stored.run_id),
                "rerun": rerun_line(stored),
                "error": next(
                    (e.get("error") for e in reversed(events) if e.get("event") == "run_failed"),
                    None,
                ),
                "history": history,
            }
        )
        return
    from rich import box
    from rich.table import Table

    from mpt_tui.render import print_collapse_warning, result_table, run_summary

    console = output_console()
    console.print(f"[bold]{stored.run_id}[/]  {stored.status}  {stored.folder}", highlight=False)
    print_collapse_warning(console, stored.result)
    stopped = [event for event in events if event.get("event") == "run_failed"]
    if stopped and stored.result is None:  # why it did not finish
        console.print(f"[red]{stopped[-1].get('status')}:[/] {stopped[-1].get('error')}")
    settings = Table(box=box.SIMPLE, show_header=False, pad_edge=False)
    settings.add_column(no_wrap=True)
    settings.add_column(overflow="fold")  # long paths wrap whole, never cut
    for field, value in run_summary(stored):
        settings.add_row(field, value)
    console.print(settings)
    if stored.result:
        console.print(result_table(stored.result, console.width))
    if any(event.get("event") == "train_step" for event in events):
        _figure(loss_figure(stored.run_id, events), plot, "text")


@app.command()
def export(
    to: Annotated[
        str,
        typer.Option(
            "--to", help="tensorboard, mlflow or wandb (comma list): where to replay the runs"
        ),
    ],
    where: Where = None,
    task: TaskOnly = None,
) -> None:
    """Replay finished runs from the store into trackers (as --log would have sent them)."""
    from mpt_engine.errors import SourceUnavailable
    from mpt_engine.run_state import RunStatus
    from mpt_engine.trackers import replay

    names = trackers_to_use(to, "to")
    if not names:
        raise SourceUnavailable(f"no tracker of {{to}} {to} is installed")
    runs = [run for run in _runs(where, task=task) if run.status is RunStatus.FINISHED]
    for run in runs:
        replay(names, run.run_id, run.config, run.record, run.events(), warn=lambda m: warn([m]))
    error_console().print(
        f"replayed {len(runs)} finished runs into {', '.join(names)}", highlight=False
    )


@app.command()
def rm(
    runs: Annotated[
        list[str] | None, typer.Argument(help="run ids, or unique prefixes of them")
    ] = None,
    where: Where = None,
    status: Annotated[
        str | None,
        typer.Option(help="every run with this status: failed, diverged, interrupted, ..."),
    ] = None,
    task: TaskOnly = None,
) -> None:
    """Move runs to $MPT_HOME/trash (delete it to reclaim the space); never one that trains.
    --where removes only runs that set each field it names (method=sp,alpha=0.9 is no SP run)."""
    from mpt_engine.results import find_run
    from mpt_engine.store import RunStore

    store = RunStore()
    chosen = [find_run(store, reference) for reference in runs or []]
    selecting = bool(where or status or task)
    if not (chosen or selecting):
        raise InvalidInput("name the runs to remove, or select them with --where or --status")
    if selecting:
        chosen += _runs(where, strict=True, status=status, task=task)
    if not chosen:
        error_console().print("no run matches the selection; nothing removed", highlight=False)
    for run in {run.run_id: run for run in chosen}.values():
        moved = store.remove(run.run_id)
        error_console().print(f"removed {run.run_id} (kept in {moved})", soft_wrap=True)


@app.command()
def table(where: Where = None, task: TaskOnly = None, fmt: Format = "text") -> None:
    """Table I: method x shots, mean ± std over seeds per language, best per column marked."""
    from mpt_engine.reports import table1

    show_table(table1(_runs(where, task=task)), fmt)


@app.command()
def table2(
    shots: Annotated[int, typer.Option(help="shot setting")] = 64,
    where: Where = None,
    task: TaskOnly = None,
    test: Test = TTest.WELCH,
    fmt: Format = "text",
) -> None:
    """Table II: MPT and its ablations with two-tailed t-test p-values."""
    from mpt_engine.reports import table2 as build

    show_table(build(_runs(where, shots=shots, task=task), test), fmt)


@app.command()
def compare(
    first: Annotated[str, typer.Argument(help="selection A, e.g. method=sp,shots=64")],
    second: Annotated[str, typer.Argument(help="selection B, e.g. method=mpt,shots=64")],
    where: Where = None,
    task: TaskOnly = None,
    test: Test = TTest.WELCH,
    fmt: Format = "text",
) -> None:
    """Two selections of runs: means, difference and two-tailed t-test per language."""
    from mpt_engine.reports import compare as build
    from mpt_engine.results import parse_where, select

    runs = _runs(where, task=task)
    table_ = build(
        select(runs, parse_where(first)), select(runs, parse_where(second)), (first, second), test
    )
    show_table(table_, fmt)


@app.command()
def families(
    shots: Annotated[int, typer.Option(help="shot setting (the paper's Figure 3: 32)")] = 32,
    where: Where = None,
    task: TaskOnly = None,
    fmt: Format = "text",
    plot: Plot = None,
) -> None:
    """Figure 3: MPT's accuracy gain relative to SP per language and language family."""
    from mpt_engine.figures import family_figure
    from mpt_engine.reports import families as build

    built = build(_runs(where, shots=shots, task=task))
    show_table(built, fmt)
    _figure(family_figure(built), plot, fmt)


@app.command()
def ablation(
    kind: Annotated[str, typer.Argument(help=", ".join(ABLATIONS))],
    shots: Annotated[int, typer.Option(help="shot setting")] = 64,
    where: Where = None,
    task: TaskOnly = None,
    fmt: Format = "text",
    plot: Plot = None,
) -> None:
    """Figures 4-5: MPT accuracy as one setting varies."""
    from mpt_engine.figures import ablation_figure
    from mpt_engine.reports import ablation as build

    built = build(_runs(where, shots=shots, task=task), kind)
    show_table(built, fmt)
    _figure(ablation_figure(built, ABLATIONS[kind].numeric), plot, fmt)


@app.command()
def paper(
    where: Where = None,
    table_number: Annotated[
        int, typer.Option("--table", help="1 (Table I) or 2 (Table II, 64 shots)")
    ] = 1,
    test: Test = TTest.COLUMNS,
    fmt: Format = "text",
) -> None:
    """Our means beside the paper's published Table I or II, with the difference per cell."""
    from mpt_engine.paper import paper_comparison, paper_table2_comparison

    if table_number == 1:
        show_table(paper_comparison(_runs(where)), fmt)
    elif table_number == 2:
        show_table(paper_table2_comparison(_runs(where, shots=64), test), fmt)
    else:
        raise InvalidInput(f"--table {table_number}: the paper has Tables I and II")

"""`mpt grid`: many runs, the product of option lists or a named preset; resumable.

Its modes (train here, submit to Slurm, dry run, status, cancel) are one function each; the
length is the command's own options (devices, Slurm), which only it has."""

from __future__ import annotations

import contextlib
import sys
from collections import Counter
from typing import Annotated

import typer

from mpt_engine.config import TRAINING
from mpt_engine.errors import ExitCode, InvalidInput
from mpt_engine.events import RunStopped
from mpt_engine.presets import PRESETS
from mpt_engine.run_state import UNFINISHED, RunStatus
from mpt_engine.store import RunStore, pending_runs
from mpt_engine.tables import count, rounded
from mpt_tui.commands.common import (
    SLURM,
    LogTo,
    NoTranslator,
    error_console,
    output_console,
    print_json,
    trackers_to_use,
    warn,
    with_no_translator,
)
from mpt_tui.commands.options import with_config_options


@with_config_options(listed=True)
def grid(
    given: dict,
    preset: Annotated[
        str | None,
        typer.Option(help=f"named lists and settings: {', '.join(PRESETS)}"),
    ] = None,
    no_translator: NoTranslator = False,
    device: Annotated[
        str,
        typer.Option(help="auto, cpu, cuda or cuda:N (without --gpus)", rich_help_panel=TRAINING),
    ] = "auto",
    gpus: Annotated[
        str | None,
        typer.Option(
            help="run in parallel on these GPUs, --runs-per-gpu worker processes each: 0,1,2,3",
            rich_help_panel=TRAINING,
        ),
    ] = None,
    runs_per_gpu: Annotated[
        int | None,
        typer.Option(
            help="long-lived worker processes per GPU slot (without --gpus: sharing this "
            "machine's cores); default: one per 24 GiB free on the GPU, at most 4; 1 on a CPU",
            rich_help_panel=TRAINING,
        ),
    ] = None,
    save_checkpoint: Annotated[
        bool, typer.Option("--save-checkpoint", help="keep each run's best state")
    ] = False,
    compile_model: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="torch.compile the model (CUDA graphs on a GPU)",
            rich_help_panel=TRAINING,
        ),
    ] = False,
    log: LogTo = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list the runs and which are finished; train nothing")
    ] = False,
    executor: Annotated[
        str,
        typer.Option(
            help="local (this machine) or slurm (a job array via submitit)", rich_help_panel=SLURM
        ),
    ] = "local",
    partition: Annotated[
        str | None, typer.Option(help="Slurm partition", rich_help_panel=SLURM)
    ] = None,
    gpus_per_run: Annotated[
        int, typer.Option(help="GPUs per array task", rich_help_panel=SLURM)
    ] = 1,
    time: Annotated[int, typer.Option(help="minutes per array task", rich_help_panel=SLURM)] = 240,
    max_parallel: Annotated[
        int, typer.Option(help="array tasks running at once", rich_help_panel=SLURM)
    ] = 16,
    runs_per_task: Annotated[
        int,
        typer.Option(
            help="runs an array task trains one after another (start-up paid once)",
            rich_help_panel=SLURM,
        ),
    ] = 1,
    slurm_option: Annotated[
        list[str] | None,
        typer.Option(
            help="extra sbatch option KEY=VALUE (repeatable), e.g. account=abc",
            rich_help_panel=SLURM,
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="with slurm: wait until no task is pending or running",
            rich_help_panel=SLURM,
        ),
    ] = False,
    status: Annotated[
        bool,
        typer.Option(
            "--status", help="per run: finished, pending, running, failed, ... (store and Slurm)"
        ),
    ] = False,
    cancel: Annotated[
        bool,
        typer.Option("--cancel", help="cancel this grid's Slurm tasks still queued or running"),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="NDJSON on stdout: each event with its run_id")
    ] = False,
) -> None:
    """Run a grid of runs; finished runs are skipped, so the same command resumes a grid."""
    from mpt_engine.grid import parse_values
    from mpt_engine.launch import gpu_slots, runs_per_slot

    given = {**given, "translator": with_no_translator(no_translator, given["translator"])}
    lists = {name: parse_values(name, text) for name, text in given.items() if text is not None}
    modes = [
        flag
        for flag, on in (("--dry-run", dry_run), ("--status", status), ("--cancel", cancel))
        if on
    ]
    if len(modes) > 1:
        raise InvalidInput(f"{' and '.join(modes)} are different modes; give one")
    if executor not in ("local", "slurm"):
        raise InvalidInput(f"unknown executor {executor!r}; choose local or slurm")
    slots = gpu_slots(gpus or "")
    workers = runs_per_slot(runs_per_gpu, slots)
    store = RunStore()
    slurm_options = None
    if executor == "slurm":
        slurm_options = _slurm_options(
            partition, gpus_per_run, time, max_parallel, runs_per_task, slurm_option or []
        )
    configs = _plan(preset, lists, store, slurm_options, device, slots, status or cancel)
    if status:
        _status(configs, store, as_json)
    elif cancel:
        _cancel(configs, store)
    elif dry_run:
        _dry_run(configs, store, as_json)
    else:
        from mpt_engine.runner import Execution

        execution = Execution(device, compile_model, save_checkpoint, trackers_to_use(log))
        if slurm_options is not None:
            _submit(configs, store, slurm_options, execution, wait, as_json)
        else:
            _run_here(configs, store, execution, slots, workers, as_json)


def _run_here(configs, store, execution, slots, workers, as_json) -> None:
    """Train the grid's missing runs on this machine (one after another, or in worker
    processes: several per GPU slot)."""
    from mpt_engine.launch import missing_gpus, run_grid, unusable_runs

    missing = missing_gpus(slots)
    if missing:
        warn([f"no CUDA GPU {', '.join(missing)} here: those slots train on the CPU"])

    unusable = unusable_runs(configs, store)
    warn(unusable)
    pending = {config.run_id for config in pending_runs(configs, store.status)}
    todo = len(pending)
    error_console().print(
        f"grid of {count(len(configs), 'run')}: "
        f"{len(configs) - todo - len(unusable)} already finished, {todo} to run",
        highlight=False,
    )
    if as_json:  # a result object for every run, the finished ones first, as mpt run --json
        for config in configs:
            result = None if config.run_id in pending else _stored_result(store, config.run_id)
            if result is not None:
                print_json({"run_id": config.run_id, "event": "result", **result})
    failed: dict[str, RunStopped] = {}  # also those that never began a folder
    if todo:
        updates = run_grid(configs, store, execution, slots, workers)
        training: set[str] = set()  # begun and not ended: what an interrupt stops
        try:  # closing(updates) stops children and records interrupted runs
            with contextlib.closing(updates), _display(as_json, todo) as show:
                for run_id, event in updates:
                    if event.kind == "run_started":
                        training.add(run_id)
                    elif event.kind in ("result", "run_failed", "run_skipped"):
                        training.discard(run_id)
                    if event.kind == "run_failed":
                        failed[run_id] = event
                    show(run_id, event)
        except KeyboardInterrupt:
            if as_json:  # each stopped run's last event, as mpt run --json ends
                _show_interrupted(sorted(training), store)
            raise
    if not as_json:
        _summary(configs, store, failed)
    codes = [event.exit_code for event in failed.values()]
    if codes:
        error_console().print(
            f"{len(codes)} of {todo} runs failed; run the same command to retry them"
        )
        sys.exit(codes[0] if len(set(codes)) == 1 else ExitCode.RUN_FAILED)  # e.g. 3: offline


def _show_interrupted(run_ids: list[str], store) -> None:
    from mpt_engine.runner import failure

    for run_id in run_ids:
        if store.status(run_id) is RunStatus.INTERRUPTED:  # not one that ended meanwhile
            print_json({"run_id": run_id, **failure(run_id, KeyboardInterrupt()).to_dict()})


def _stored_result(store, run_id: str) -> dict | None:
    from mpt_engine.store import BadRun

    try:
        return store.result(run_id)
    except BadRun:
        return None  # unusable_runs said why


def _summary(configs, store, failed: dict[str, RunStopped]) -> None:
    """The grid's runs as it ends, on stdout: each one's status and average accuracy. A run
    refused before it began (a source offline) has no folder, so its status is the grid's."""
    table = _table()
    for name in ("run", "status", "avg"):
        table.add_column(name, no_wrap=True, justify="right" if name == "avg" else "left")
    for config in configs:
        result = _stored_result(store, config.run_id)
        average = "" if result is None else rounded(result["average"])
        status = store.status(config.run_id, result)
        if status is RunStatus.NEW and config.run_id in failed:
            status = failed[config.run_id].status
        table.add_row(config.run_id, status, average)
    output_console().print(table)


def _cancel(configs, store) -> None:
    from mpt_engine.slurm import cancel

    cancelled = cancel(configs, store)
    listed = f": {' '.join(cancelled)}" if cancelled else ""
    error_console().print(
        f"cancelled {count(len(cancelled), 'Slurm task')}{listed}", highlight=False
    )


def _plan(preset, lists, store, slurm_options, device, slots, existing: bool):
    """The grid's runs. A run's id names its resolved precision, so precision auto takes its
    meaning where the runs train: on Slurm's compute nodes or on this machine (checked here).
    `existing` (--status, --cancel): the runs as they were submitted or stored."""
    from mpt_engine.grid import expand

    if existing:
        from mpt_engine.launch import local_precision
        from mpt_engine.slurm import as_found

        auto = slurm_options.auto_precision if slurm_options else local_precision(device, slots)
        return as_found(expand(preset, lists), store, auto)
    if slurm_options is not None:
        return expand(preset, lists, auto_precision=slurm_options.auto_precision)
    from mpt_engine.launch import local_grid

    return local_grid(preset, lists, device, slots)


@contextlib.contextmanager
def _display(as_json: bool, todo: int):
    """A function showing each (run id, event): NDJSON on stdout, or the progress display."""
    if as_json:
        yield lambda run_id, event: print_json({"run_id": run_id, **event.to_dict()})
        return
    from mpt_tui.progress import GridProgress

    with GridProgress(error_console(), todo) as progress:
        yield progress.update


def _table():
    from rich import box
    from rich.table import Table

    return Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)


def _dry_run(configs, store, as_json: bool) -> None:
    from mpt_engine.grid import varying_fields

    # method, shots and seed are in the run id (mpt-k64-s1-...)
    axes = [name for name in varying_fields(configs) if name not in ("method", "shots", "seed")]
    statuses = [store.status(config.run_id) for config in configs]
    if as_json:
        for config, status in zip(configs, statuses, strict=True):
            print_json({"run_id": config.run_id, "status": status, "config": config.to_dict()})
    else:
        table = _table()
        table.add_column("run", no_wrap=True, min_width=max(len(c.run_id) for c in configs))
        for column in (*axes, "status"):
            table.add_column(column.replace("_", " "), no_wrap=True)
        for config, status in zip(configs, statuses, strict=True):
            values = config.to_dict()
            table.add_row(
                config.run_id,
                *("—" if values[name] is None else str(values[name]) for name in axes),
                status,
            )
        output_console().print(table)
    finished = statuses.count(RunStatus.FINISHED)
    todo = pending_runs(configs, store.status)
    error_console().print(
        f"{count(len(configs), 'run')}: {finished} finished, {len(todo)} to run{_estimate(todo)}",
        highlight=False,
    )


def _estimate(todo) -> str:
    """`, ≈ 3.5 h` at the pace of the store's finished runs of the same model (and method)."""
    if not todo:
        return ""
    from mpt_engine.results import Paces, load_runs
    from mpt_tui.render import duration

    seconds = Paces(load_runs(RunStore())[0]).estimate(todo)
    return (
        ", time unknown (nothing like them has finished)"
        if seconds is None
        else f", ≈ {duration(seconds)}"
    )


def _status(configs, store, as_json: bool) -> None:
    from mpt_engine.slurm import grid_status

    rows = grid_status(configs, store)
    if as_json:
        for config, state, job in rows:
            print_json({"run_id": config.run_id, "status": state, "slurm_job": job or None})
        return
    table = _table()
    table.add_column("run", no_wrap=True)
    table.add_column("status")
    table.add_column("slurm job")
    for config, state, job in rows:
        table.add_row(config.run_id, state, job)
    output_console().print(table)
    states = Counter(state for _, state, _ in rows)
    summary = ", ".join(f"{number} {state}" for state, number in sorted(states.items()))
    error_console().print(f"{count(len(rows), 'run')}: {summary}", highlight=False)


def _slurm_options(partition, gpus_per_run, minutes, max_parallel, runs_per_task, options):
    from mpt_engine.slurm import SlurmOptions

    extra = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--slurm-option {option!r}: expected KEY=VALUE")
        extra[key] = value
    if gpus_per_run < 0 or minutes < 1 or max_parallel < 1 or runs_per_task < 1:
        raise InvalidInput(
            "--gpus-per-run must be >= 0, --time, --max-parallel and --runs-per-task >= 1"
        )
    return SlurmOptions(partition, gpus_per_run, minutes, max_parallel, runs_per_task, extra)


def _submit(configs, store, options, execution, wait, as_json) -> None:
    import time as clock

    from mpt_engine.slurm import grid_status, submit

    submitted = submit(configs, store, options, execution)
    if as_json:
        for record in submitted:
            print_json(record)
    message = (
        f"submitted {len(submitted)} of {len(configs)} runs as Slurm array "
        f"{submitted[0]['job_id'].split('_')[0]} ("
        f"{count(len({record['job_id'] for record in submitted}), 'task')}, "
        f"at most {options.max_parallel} at a time)"
        if submitted
        else f"nothing to submit: all {len(configs)} runs are finished, queued or running"
    )
    error_console().print(message, highlight=False)
    if not wait:
        return
    while True:
        states = [state for _, state, _ in grid_status(configs, store)]
        if not any(state in UNFINISHED for state in states):
            break
        clock.sleep(2)
    unfinished = len(states) - states.count(RunStatus.FINISHED)
    if unfinished:
        error_console().print(
            f"{unfinished} runs did not finish; submit the same grid again to retry them"
        )
        sys.exit(ExitCode.RUN_FAILED)

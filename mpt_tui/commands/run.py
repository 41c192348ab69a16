"""`mpt run`: one run, headless."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from mpt_engine.config import TRAINING, UNUSED_BY
from mpt_engine.presets import PRESETS, build_config
from mpt_tui.commands.common import (
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

PRESET_HELP = (
    f"named defaults: {', '.join(PRESETS)} (smoke: tiny model, offline, about 10 s a run on "
    "a CPU once its tokenizer is cached)"
)


@with_config_options(listed=False)
def run(
    given: dict,
    preset: Annotated[str | None, typer.Option(help=PRESET_HELP)] = None,
    no_translator: NoTranslator = False,
    device: Annotated[
        str, typer.Option(help="auto, cpu, cuda or cuda:N", rich_help_panel=TRAINING)
    ] = "auto",
    compile_model: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="torch.compile the model (CUDA graphs on a GPU)",
            rich_help_panel=TRAINING,
        ),
    ] = False,
    save_checkpoint: Annotated[
        bool,
        typer.Option(
            "--save-checkpoint",
            help="keep the best state (safetensors) in the run folder, for mpt predict",
        ),
    ] = False,
    log: LogTo = None,
    rerun: Annotated[
        bool,
        typer.Option(
            "--rerun",
            help="train it again even if finished (the old folder goes to $MPT_HOME/trash)",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="NDJSON events on stdout, the result object last")
    ] = False,
) -> None:
    """Train and evaluate one run; print the per-language test accuracies."""
    overrides = {
        **given,
        "translator": with_no_translator(no_translator, given["translator"]),
    }
    config = build_config(preset, overrides)
    unused = [name for name in UNUSED_BY[config.method] if overrides.get(name) is not None]
    warn(f"{config.method} does not use --{name.replace('_', '-')}; ignored" for name in unused)

    from mpt_engine.device import for_device
    from mpt_engine.store import RunStore

    config = for_device(config, device)  # precision auto resolved: the id of the stored run

    store = RunStore()
    finished = None if rerun else store.result(config.run_id)
    if finished is not None:
        kept = (store.folder(config.run_id) / "checkpoint").is_dir()
        note = " (no checkpoint kept)" if save_checkpoint and not kept else ""
        error_console().print(
            f"run {config.run_id} already finished in {store.folder(config.run_id)}{note}; "
            "showing its stored result (--rerun trains it again)",
            highlight=False,
        )
        show_result(finished, as_json)
        return

    from mpt_engine.runner import Execution, execute, failure, finished_result
    from mpt_tui.progress import RunProgress

    def replaced(moved: Path) -> None:
        error_console().print(
            f"moved the finished run to {moved}; training it again", soft_wrap=True
        )

    execution = Execution(device, compile_model, save_checkpoint, trackers_to_use(log))
    events = execute(config, store, execution, replaced=replaced if rerun else None)
    try:
        with contextlib.closing(events):  # an interrupted run records itself as interrupted
            if as_json:
                for event in events:
                    print(event.to_json(), flush=True)
                return
            with RunProgress(error_console()) as progress:
                for event in events:
                    progress.update(event)
    except KeyboardInterrupt:
        finished = finished_result(store, config.run_id)
        if finished is None:  # an interrupt after the result was stored does not undo the run
            if as_json:
                print(failure(config.run_id, KeyboardInterrupt()).to_json(), flush=True)
            raise
        show_result(finished, as_json)
        return
    except Exception as error:
        if as_json:
            print(failure(config.run_id, error).to_json(), flush=True)  # the last event
        raise
    show_result(progress.result, as_json=False)


def show_result(result: dict, as_json: bool) -> None:
    if as_json:
        print_json({"event": "result", **result})
        return
    from mpt_tui.render import print_collapse_warning, result_table

    console = output_console()
    console.print(result_table(result, console.width))
    print_collapse_warning(console, result)

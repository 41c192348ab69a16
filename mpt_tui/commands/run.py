"""`mpt run`: one run, headless."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from mpt_engine.config import (
    UNUSED_BY,
    DataKind,
    Method,
    Precision,
    PromptPosition,
    SplitKind,
    TranslatorKind,
    build_config,
)
from mpt_tui.commands.common import (
    ABLATION,
    TRAINING,
    NoTranslator,
    config_option,
    error_console,
    output_console,
    print_json,
    warn,
    with_no_translator,
)

PRESET_HELP = "named defaults: smoke (tiny model, offline, seconds), paper, table1, ..."


def run(
    method: Annotated[Method | None, config_option("method", "--method")] = None,
    shots: Annotated[int | None, config_option("shots", "--shots", "-k")] = None,
    seed: Annotated[int | None, config_option("seed", "--seed")] = None,
    model: Annotated[str | None, config_option("model", "--model")] = None,
    preset: Annotated[str | None, typer.Option(help=PRESET_HELP)] = None,
    data: Annotated[DataKind | None, config_option("data", "--data")] = None,
    split: Annotated[SplitKind | None, config_option("split", "--split")] = None,
    alpha: Annotated[float | None, config_option("alpha", "--alpha", panel=ABLATION)] = None,
    prompt_length: Annotated[
        int | None, config_option("prompt_length", "--prompt-length", panel=ABLATION)
    ] = None,
    position: Annotated[
        PromptPosition | None, config_option("position", "--position", panel=ABLATION)
    ] = None,
    translator: Annotated[
        TranslatorKind | None, config_option("translator", "--translator", panel=ABLATION)
    ] = None,
    no_translator: NoTranslator = False,
    aux: Annotated[str | None, config_option("aux", "--aux", panel=ABLATION)] = None,
    aux_size: Annotated[int | None, config_option("aux_size", "--aux-size", panel=ABLATION)] = None,
    epochs: Annotated[int | None, config_option("epochs", "--epochs", panel=TRAINING)] = None,
    batch_size: Annotated[
        int | None, config_option("batch_size", "--batch-size", panel=TRAINING)
    ] = None,
    lr: Annotated[float | None, config_option("lr", "--lr", panel=TRAINING)] = None,
    max_length: Annotated[
        int | None, config_option("max_length", "--max-length", panel=TRAINING)
    ] = None,
    eval_batch_size: Annotated[
        int | None, config_option("eval_batch_size", "--eval-batch-size", panel=TRAINING)
    ] = None,
    test_limit: Annotated[
        int | None, config_option("test_limit", "--test-limit", panel=TRAINING)
    ] = None,
    precision: Annotated[
        Precision | None, config_option("precision", "--precision", panel=TRAINING)
    ] = None,
    device: Annotated[
        str, typer.Option(help="auto, cpu, cuda or cuda:N", rich_help_panel=TRAINING)
    ] = "auto",
    compile_model: Annotated[
        bool,
        typer.Option("--compile", help="torch.compile the encoder (GPU)", rich_help_panel=TRAINING),
    ] = False,
    save_checkpoint: Annotated[
        bool,
        typer.Option(
            "--save-checkpoint",
            help="keep the best state (safetensors) in the run folder, for mpt predict",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="NDJSON events on stdout, the result object last")
    ] = False,
) -> None:
    """Train and evaluate one run; print the per-language test accuracies."""
    overrides = dict(
        method=method,
        shots=shots,
        seed=seed,
        model=model,
        data=data,
        split=split,
        alpha=alpha,
        prompt_length=prompt_length,
        position=position,
        translator=with_no_translator(no_translator, translator),
        aux=aux,
        aux_size=aux_size,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        max_length=max_length,
        eval_batch_size=eval_batch_size,
        test_limit=test_limit,
        precision=precision,
    )
    config = build_config(preset, overrides)
    unused = [name for name in UNUSED_BY[config.method] if overrides.get(name) is not None]
    warn(f"{config.method} does not use --{name.replace('_', '-')}; ignored" for name in unused)

    from mpt_engine.device import for_device
    from mpt_engine.store import RunStore

    config = for_device(config, device)  # precision auto resolved: the id of the stored run

    store = RunStore()
    finished = store.result(config.run_id)
    if finished is not None:
        kept = (store.folder(config.run_id) / "checkpoint").is_dir()
        note = " (no checkpoint kept)" if save_checkpoint and not kept else ""
        error_console().print(
            f"run {config.run_id} already finished in {store.folder(config.run_id)}{note}; "
            "showing its stored result",
            highlight=False,
        )
        show_result(finished, as_json)
        return

    from mpt_engine.runner import execute, failure, finished_result
    from mpt_tui.progress import RunProgress

    events = execute(config, store, device, save_checkpoint, compile_model)
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
    from mpt_tui.render import result_table

    console = output_console()
    console.print(result_table(result, console.width))

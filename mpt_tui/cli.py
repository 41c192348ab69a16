"""The `mpt` console script. torch, transformers and textual are imported inside commands only,
so `mpt --help` stays fast."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer

from mpt_engine.config import (
    DataKind,
    Method,
    PromptPosition,
    SplitKind,
    TranslatorKind,
    build_config,
    field_help,
)
from mpt_engine.errors import ExitCode, InvalidInput, MptError

app = typer.Typer(
    name="mpt",
    help="Few-shot cross-lingual NLI with the Multilingual Prompt Translator and its baselines.",
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

ABLATION = "Ablations (MPT)"
TRAINING = "Training"


@app.callback(invoke_without_command=True)
def root(context: typer.Context) -> None:
    if context.invoked_subcommand is None:
        typer.echo(context.get_help())


def _option(name: str, *flags: str, panel: str | None = None):
    return typer.Option(*flags, help=field_help(name), rich_help_panel=panel, show_default=False)


@app.command()
def run(
    method: Annotated[Method | None, _option("method", "--method")] = None,
    shots: Annotated[int | None, _option("shots", "--shots", "-k")] = None,
    seed: Annotated[int | None, _option("seed", "--seed")] = None,
    model: Annotated[str | None, _option("model", "--model")] = None,
    preset: Annotated[
        str | None,
        typer.Option(help="named defaults: smoke (tiny model, offline, seconds) or paper"),
    ] = None,
    data: Annotated[DataKind | None, _option("data", "--data")] = None,
    split: Annotated[SplitKind | None, _option("split", "--split")] = None,
    alpha: Annotated[float | None, _option("alpha", "--alpha", panel=ABLATION)] = None,
    prompt_length: Annotated[
        int | None, _option("prompt_length", "--prompt-length", panel=ABLATION)
    ] = None,
    position: Annotated[
        PromptPosition | None, _option("position", "--position", panel=ABLATION)
    ] = None,
    translator: Annotated[
        TranslatorKind | None, _option("translator", "--translator", panel=ABLATION)
    ] = None,
    no_translator: Annotated[
        bool,
        typer.Option("--no-translator", help="ablation: p^T = p^S", rich_help_panel=ABLATION),
    ] = False,
    aux: Annotated[str | None, _option("aux", "--aux", panel=ABLATION)] = None,
    aux_size: Annotated[int | None, _option("aux_size", "--aux-size", panel=ABLATION)] = None,
    epochs: Annotated[int | None, _option("epochs", "--epochs", panel=TRAINING)] = None,
    batch_size: Annotated[int | None, _option("batch_size", "--batch-size", panel=TRAINING)] = None,
    lr: Annotated[float | None, _option("lr", "--lr", panel=TRAINING)] = None,
    max_length: Annotated[int | None, _option("max_length", "--max-length", panel=TRAINING)] = None,
    eval_batch_size: Annotated[
        int | None, _option("eval_batch_size", "--eval-batch-size", panel=TRAINING)
    ] = None,
    test_limit: Annotated[int | None, _option("test_limit", "--test-limit", panel=TRAINING)] = None,
    device: Annotated[
        str, typer.Option(help="auto, cpu, cuda or cuda:N", rich_help_panel=TRAINING)
    ] = "auto",
    as_json: Annotated[
        bool, typer.Option("--json", help="NDJSON events on stdout, the result object last")
    ] = False,
) -> None:
    """Train and evaluate one run; print the per-language test accuracies."""
    if no_translator and translator not in (None, TranslatorKind.NONE):
        raise InvalidInput(f"--no-translator contradicts --translator {translator.value}")
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
        translator=TranslatorKind.NONE if no_translator else translator,
        aux=aux,
        aux_size=aux_size,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        max_length=max_length,
        eval_batch_size=eval_batch_size,
        test_limit=test_limit,
    )
    config = build_config(preset, overrides)

    from mpt_engine.store import RunStore

    store = RunStore()
    finished = store.result(config.run_id)
    if finished is not None:
        _error_console().print(
            f"run {config.run_id} already finished in {store.folder(config.run_id)}; "
            "showing its stored result"
        )
        _show_result(finished, as_json)
        return

    from mpt_engine.runner import execute
    from mpt_tui.progress import RunProgress

    events = execute(config, store, device=device)
    if as_json:
        for event in events:
            print(event.to_json(), flush=True)
        return
    with RunProgress(_error_console()) as progress:
        for event in events:
            progress.update(event)
    _show_result(progress.result, as_json=False)


def _show_result(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"event": "result", **result}, ensure_ascii=False))
        return
    from rich.console import Console

    from mpt_tui.progress import result_table

    console = Console()
    console.print(result_table(result, console.width))


def _error_console():
    from rich.console import Console

    return Console(stderr=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure is one line on stderr and an exit code from the contract."""
    args = sys.argv[1:] if argv is None else argv
    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="mpt", standalone_mode=False)
    except typer.TyperException as error:  # usage errors from option parsing
        _fail(error.format_message(), error.exit_code)
    except MptError as error:
        _fail(str(error), error.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", ExitCode.INTERRUPTED)
    except Exception as error:
        if os.environ.get("MPT_DEBUG"):
            raise
        _fail(
            f"{type(error).__name__}: {error} (set MPT_DEBUG=1 for a traceback)",
            ExitCode.RUN_FAILED,
        )
    sys.exit(code if isinstance(code, int) else ExitCode.OK)


def _fail(message: str, code: int) -> None:
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(int(code))

"""`mpt export RUN DIR`: a finished run in Hugging Face formats, and optionally on the hub."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mpt_tui.commands.common import error_console


def export(
    run: Annotated[
        str, typer.Argument(help="run id (or unique prefix) trained with --save-checkpoint")
    ],
    folder: Annotated[Path, typer.Argument(help="where to write it (a new or empty folder)")],
    push_to_hub: Annotated[
        str | None,
        typer.Option("--push-to-hub", metavar="REPO_ID", help="also upload it to this hub repo"),
    ] = None,
) -> None:
    """Write a run's model, tokenizer and prompts in Hugging Face formats, with a model card:
    plain transformers and safetensors load it, and so does mpt predict."""
    from mpt_engine import hf_export
    from mpt_engine.results import find_run
    from mpt_engine.store import RunStore
    from mpt_tui.commands.options import rerun_line

    stored = find_run(RunStore(), run)
    written = hf_export.export(stored.folder, folder.expanduser(), rerun_line(stored))
    error_console().print(f"wrote {written}", highlight=False)
    if push_to_hub:
        url = hf_export.push(written, push_to_hub)
        error_console().print(f"pushed to {url}", highlight=False)

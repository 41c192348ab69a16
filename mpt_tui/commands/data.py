"""`mpt data`: build auxiliary corpora."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated

import typer

from mpt_engine.config import DataKind
from mpt_tui.commands.common import error_console

app = typer.Typer(help="Build auxiliary data.", no_args_is_help=True)


@app.command("build-paws15")
def build_paws15(
    model: Annotated[
        str, typer.Option(help="a seq2seq translation model (NLLB language codes)")
    ] = ("facebook/nllb-200-distilled-600M"),
    size: Annotated[int, typer.Option(help="English PAWS-X pairs to translate")] = 500,
    seed: Annotated[int, typer.Option(help="seed of the pair and language draws")] = 0,
    data: Annotated[
        DataKind | None,
        typer.Option(
            help="source of English PAWS-X: hub, local or synthetic", case_sensitive=False
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N")] = "auto",
    batch_size: Annotated[int, typer.Option(help="sentences per generation batch")] = 16,
    beams: Annotated[int, typer.Option(help="beam search width")] = 4,
    force: Annotated[bool, typer.Option("--force", help="rebuild even if cached")] = False,
) -> None:
    """Rebuild the paper's PAWS-15 auxiliary corpus with an open MT model (for --aux paws15)."""

    from mpt_engine.data.aux import paws15_path
    from mpt_engine.data.task import open_source
    from mpt_engine.errors import InvalidInput
    from mpt_engine.paws15 import build
    from mpt_engine.sources import default_data

    if size < 1 or batch_size < 1 or beams < 1:
        raise InvalidInput("--size, --batch-size and --beams must be at least 1")
    if seed < 0:
        raise InvalidInput("--seed must be at least 0")
    kind = data or default_data()
    path = paws15_path()
    manifest = path.with_name("manifest.json")
    if path.exists() and not force and _built_with(manifest) == (model, seed, size):
        error_console().print(
            f"PAWS-15 already built: {path} (use --force to rebuild)", highlight=False
        )
        return
    written = build(open_source(kind), model, size, seed, device, batch_size, beams, path)
    counts = json.loads(manifest.read_text())["languages"]
    summary = ", ".join(f"{lang} {count}" for lang, count in counts.items())
    error_console().print(f"wrote {size} pairs to {written} ({summary})", highlight=False)


def _built_with(manifest: Path) -> tuple | None:
    """The model, seed and size PAWS-15 was built with; None for a missing or unreadable
    manifest (the corpus is then built again, which writes a new one)."""
    with contextlib.suppress(OSError, ValueError):
        built = json.loads(manifest.read_text())
        if isinstance(built, dict):
            return built.get("model"), built.get("seed"), built.get("size")
    return None

"""Helpers every command shares: consoles, table output, --no-translator."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from mpt_engine.config import ABLATION, TRAINING
from mpt_engine.errors import InvalidInput

SLURM = "Slurm (--executor slurm)"


NoTranslator = Annotated[
    bool,
    typer.Option(
        "--no-translator", help="ablation: p^T = p^S (--translator none)", rich_help_panel=ABLATION
    ),
]


LogTo = Annotated[
    str | None,
    typer.Option(
        "--log",
        help="also send the events to trackers: tensorboard, mlflow, wandb (comma list; each "
        "is an extra, pip install 'mpt[NAME]')",
        rich_help_panel=TRAINING,
    ),
]


def trackers_to_use(text: str | None, field: str = "log") -> tuple[str, ...]:
    """The trackers --log (or the option `field`) names that are installed; one warning for
    each that is not."""
    from mpt_engine.trackers import missing_extras, parse_trackers

    names = parse_trackers(text, field)
    missing = missing_extras(names)
    warn(f"{name} is not installed (pip install 'mpt[{name}]'): not logged" for name in missing)
    return tuple(name for name in names if name not in missing)


def with_no_translator(no_translator: bool, translator: str | None) -> str | None:
    """--translator as --no-translator leaves it: "none", or InvalidInput if they disagree."""
    if not no_translator:
        return translator
    if translator not in (None, "none"):
        raise InvalidInput(f"--no-translator contradicts --translator {translator}")
    return "none"


def error_console():
    from rich.console import Console

    return Console(stderr=True)


def output_console():
    from rich.console import Console

    return Console()


def print_json(value) -> None:
    print(json.dumps(value, ensure_ascii=False), flush=True)


def show_table(table, fmt: str) -> None:
    """A report on stdout: rich for `text`, else the data alone in the chosen format."""
    from mpt_engine.tables import FORMATS, export

    if fmt not in FORMATS:
        from mpt_engine.errors import InvalidInput

        raise InvalidInput(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt != "text":
        sys.stdout.write(export(table, fmt))
        return
    from mpt_tui.render import LONG_TABLE, plain_lines, rich_tables

    if len(table.rows) > LONG_TABLE:  # rich would lay out thousands of rows for seconds
        sys.stdout.writelines(line + "\n" for line in plain_lines(table))
        return

    console = output_console()
    for part in rich_tables(table, console):
        console.print(part)


def warn(messages) -> None:
    console = error_console()
    for message in messages:
        console.print(f"[yellow]warning:[/] {message}", highlight=False)

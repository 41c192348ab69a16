"""The `mpt` console script. torch, transformers and textual are imported inside commands only,
so `mpt --help` stays fast."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Annotated

import typer

from mpt_engine.errors import STOP_SIGNALS, ExitCode, MptError
from mpt_tui.ascii import degrade_unencodable_output
from mpt_tui.commands import data, results
from mpt_tui.commands.export import export
from mpt_tui.commands.grid import grid
from mpt_tui.commands.options import flag
from mpt_tui.commands.predict import predict
from mpt_tui.commands.run import run

app = typer.Typer(
    name="mpt",
    help="Few-shot cross-lingual NLI with the Multilingual Prompt Translator and its baselines.",
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.command()(run)
app.command()(grid)
app.command()(predict)
app.command()(export)
app.add_typer(results.app, name="results")
app.add_typer(data.app, name="data")


@app.command()
def tui() -> None:
    """The terminal app: launcher, live runs and the results browser."""
    from mpt_engine import paths
    from mpt_tui.app import MptApp

    for check in (paths.home, paths.cache_dir):  # a bad MPT_HOME or MPT_CACHE: one line
        check()
    MptApp().run()


def _version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        typer.echo(f"mpt {version('mpt')}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    context: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Show the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """With no command: the app on a terminal, the help otherwise."""
    if context.invoked_subcommand is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            tui()
        else:
            typer.echo(context.get_help())


class _StderrNotes(logging.Handler):
    """The engine's notes (a backbone being built) as lines on stderr, looked up at each line so
    that a live progress display can place them above itself."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"mpt: {record.getMessage()}", file=sys.stderr, flush=True)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM and SIGHUP stop like Ctrl-C: runs are recorded as interrupted


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure is one line on stderr and an exit code from the contract."""
    args = sys.argv[1:] if argv is None else argv
    degrade_unencodable_output()
    if threading.current_thread() is threading.main_thread():
        for stop in STOP_SIGNALS:
            signal.signal(stop, _interrupt)
    notes = logging.getLogger("mpt_engine")
    if not notes.handlers:
        notes.addHandler(_StderrNotes())
        notes.setLevel(logging.INFO)
    command = typer.main.get_command(app)
    _plain_help(command)
    try:
        code = command.main(args=args, prog_name="mpt", standalone_mode=False)
    except typer.TyperException as error:  # usage errors from option parsing
        _fail(error.format_message().replace("Value error, ", ""), error.exit_code)
    except MptError as error:
        _fail(error.phrased(flag), error.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", ExitCode.INTERRUPTED)
    except Exception as error:
        if os.environ.get("MPT_DEBUG"):
            raise
        _fail(
            f"{type(error).__name__}: {error} (set MPT_DEBUG=1 for a traceback)",
            ExitCode.RUN_FAILED,
        )
    if code == ExitCode.INTERRUPTED:  # typer turns Ctrl-C inside a command into exit code 130
        _fail("interrupted", ExitCode.INTERRUPTED)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)


def _plain_help(command) -> None:
    """Help as a shell user reads it: flags take no value (typer would print `<bool>` beside
    each) and arguments are named in capitals (`mpt predict RUN`, not `{run}`)."""
    for param in command.params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
        elif param.param_type_name == "argument":
            param.metavar = param.metavar or param.name.upper()
            shown = param.metavar if param.required else f"[{param.metavar}]"
            shown += "..." if param.nargs != 1 else ""
            param._usage_display_name = lambda shown=shown: shown  # typer writes {RUN}
    for sub_command in getattr(command, "commands", {}).values():
        _plain_help(sub_command)


def _fail(message: str, code: int) -> None:
    """One line on stderr (none when the message is empty: help was printed instead)."""
    message = " ".join(str(message).split())
    if message:
        print(f"error: {message}", file=sys.stderr)
    sys.exit(int(code))

"""Errors that end a command, each with the exit code of the user-facing contract."""

import re
import signal
from collections.abc import Callable
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    RUN_FAILED = 1  # diverged, out of memory
    USAGE = 2  # bad usage or bad input
    UNAVAILABLE = 3  # a model or data source cannot be reached or read
    BUSY = 4  # another process is training the run right now (not a failure)
    INTERRUPTED = 130


# Signals that stop a run as Ctrl-C does (recorded as interrupted, exit 130): SIGTERM (a grid or
# Slurm cancelling) and SIGHUP (a closed terminal, a lost SSH session).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


# An option named in a message: `{aux_size}`.
OPTION = re.compile(r"\{([a-z][a-z_]*)\}")


def named(field: str) -> str:
    """How a message names an option, for each front end to phrase: `{field}`."""
    return f"{{{field}}}"


def plain_words(field: str) -> str:
    return field.replace("_", " ")


class MptError(Exception):
    """An expected failure: the front ends print its message on one line and exit with its code.

    Errors are data, which each front end phrases. The message names the options it concerns in
    braces, by field name (`lower {prompt_length}`); `phrased` names them in a front end's words
    (the CLI's `--prompt-length`, the app's field label) and str() in plain words, as events and
    logs keep them. `field`, `value` and `allowed` say which option was wrong, as what, and what it
    takes, so a form can mark the field."""

    exit_code = ExitCode.RUN_FAILED

    def __init__(
        self, message: str, *, field: str | None = None, value: Any = None, allowed: str = ""
    ) -> None:
        super().__init__(message)
        self.field, self.value, self.allowed = field, value, allowed

    @property
    def template(self) -> str:
        """The message as raised, its options still in braces (to embed in another)."""
        return str(self.args[0])

    def phrased(self, name: Callable[[str], str]) -> str:
        """The message with each option named by `name` (field name -> the front end's words)."""
        return OPTION.sub(lambda match: name(match[1]), self.template)

    def __str__(self) -> str:
        return self.phrased(plain_words)


class InvalidInput(MptError, ValueError):
    exit_code = ExitCode.USAGE


class SourceUnavailable(MptError):
    exit_code = ExitCode.UNAVAILABLE


class RunFailed(MptError):
    exit_code = ExitCode.RUN_FAILED


class Diverged(RunFailed):
    """The loss became NaN or infinite."""


class RunClaimed(MptError):
    """The run is not trained here: another process is training it, or it finished meanwhile."""

    exit_code = ExitCode.BUSY

"""Errors that end a command, each with the exit code of the user-facing contract."""

import signal
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    RUN_FAILED = 1  # diverged, out of memory
    USAGE = 2  # bad usage or bad input
    UNAVAILABLE = 3  # a model or data source cannot be reached or read
    INTERRUPTED = 130


# Signals that stop a run as Ctrl-C does (recorded as interrupted, exit 130): SIGTERM (a grid or
# Slurm cancelling) and SIGHUP (a closed terminal, a lost SSH session).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class MptError(Exception):
    """An expected failure: the front ends print its message on one line and exit with its code."""

    exit_code = ExitCode.RUN_FAILED


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

"""Reading the user's files (data folders, --aux file:PATH, mpt predict --file) safely, with
errors that name the file and the line.

Every such file goes through `open_user_file`: regular files only, because a FIFO blocks
forever and a device such as /dev/zero never ends. Lines and sentences are capped, so that a
file with no newline cannot fill the memory or keep a run busy for minutes.
"""

from __future__ import annotations

import functools
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from mpt_engine.errors import InvalidInput, SourceUnavailable
from mpt_engine.settled import settled

MAX_LINE_CHARS = 1_000_000  # one JSON line; XNLI's longest is under 2,000
MAX_TEXT_CHARS = 10_000  # one premise or hypothesis; XNLI's longest is under 1,000

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a pipe"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
    (stat.S_ISSOCK, "a socket"),
)


def open_user_file(path: Path) -> TextIO:
    """`path` opened as UTF-8 text: SourceUnavailable when it is missing or unreadable,
    InvalidInput when it is not a regular file (checked without blocking on a FIFO)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise SourceUnavailable(f"missing data file {path}") from None
    except OSError as error:
        raise SourceUnavailable(f"cannot read {path}: {error.strerror}") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        kind = next((name for test, name in _KINDS if test(mode)), "not a file")
        raise InvalidInput(f"{path} is {kind}, not a regular file")
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, encoding="utf-8")


def check_text(text: str, where: str) -> str:
    """A premise or hypothesis, InvalidInput when it is too long to be a sentence."""
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInput(
            f"{where} is {len(text)} characters long; a sentence may have at most {MAX_TEXT_CHARS}"
        )
    return text


def read_jsonl(path: Path, required: tuple[str, ...] = ()) -> tuple[tuple[int, dict], ...]:
    """(line number, object) for each non-blank line; bad lines, and a file without any,
    raise InvalidInput. `required` names text fields every line must have. A regular file read
    before is not read again while its size and modification time stay the same: a worker
    reads the test sets once for all its runs (the objects are shared: do not change them)."""
    try:
        status = os.stat(path)
    except OSError:
        status = None  # _read says why, in the user's words
    if status is None or not stat.S_ISREG(status.st_mode) or not settled(status.st_mtime_ns):
        return tuple(_read(path, required))
    return _read_kept(str(path), required, (status.st_size, status.st_mtime_ns, status.st_ino))


@functools.lru_cache(maxsize=64)
def _read_kept(path: str, required: tuple[str, ...], signature: tuple) -> tuple:
    return tuple(_read(Path(path), required))


def _read(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, Any]]]:
    rows = 0
    with open_user_file(path) as handle:
        try:
            number = 0
            while line := handle.readline(MAX_LINE_CHARS + 1):
                number += 1
                if len(line) > MAX_LINE_CHARS and not line.endswith("\n"):
                    raise InvalidInput(
                        f"{path}:{number}: line longer than {MAX_LINE_CHARS} characters"
                    )
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise InvalidInput(f"{path}:{number}: not valid JSON ({error.msg})") from None
                if not isinstance(row, dict):
                    raise InvalidInput(f"{path}:{number}: expected a JSON object")
                missing = [name for name in required if not isinstance(row.get(name), str)]
                if missing:
                    raise InvalidInput(
                        f"{path}:{number}: missing text field(s) {', '.join(missing)}"
                    )
                for name in required:
                    check_text(row[name], f"{path}:{number}: {name}")
                rows += 1
                yield number, row
        except UnicodeDecodeError:
            raise InvalidInput(f"{path}: not UTF-8 text") from None
    if not rows:
        raise InvalidInput(f"{path} is empty: it holds no JSON lines")

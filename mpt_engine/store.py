"""The run store: one folder per run under $MPT_HOME/runs/<run_id>/.

config.json and record.json are written before training; events.jsonl grows one line per event
and is never truncated (a restarted run appends its new attempt after the old ones);
result.json is written atomically at the end and exists only for a finished run, which is never
overwritten. A process training a run holds its claim, an exclusive lock on
$MPT_HOME/locks/<run_id>.lock that the kernel releases when the process dies, so two grids on one
store never train the same run, and a killed run is free to be trained again at once.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mpt_engine import paths
from mpt_engine.errors import InvalidInput, RunFailed

RUN_ID = re.compile(r"^[a-z]+-k\d+-s\d+-[0-9a-f]{10}$")


class StoreWriteFailed(RunFailed):
    """The store could not be written (a full disk, a read-only folder)."""


def _write_error(path: Path, error: OSError) -> StoreWriteFailed:
    reason = "the disk is full" if error.errno == errno.ENOSPC else (error.strerror or str(error))
    return StoreWriteFailed(f"cannot write {path}: {reason}; files already written are intact")


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file, flush, fsync and rename: readers see old or new, never half."""
    try:
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
    except OSError as error:
        raise _write_error(path, error) from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _write_error(path, error) from None
        raise


def write_json(path: Path, value: Any) -> None:
    write_atomic(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n")


class RunStore:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else paths.runs_dir()

    def folder(self, run_id: str) -> Path:
        if not RUN_ID.match(run_id):
            raise InvalidInput(f"not a run id: {run_id!r}")
        return self.root / run_id

    def result(self, run_id: str) -> dict[str, Any] | None:
        path = self.folder(run_id) / "result.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def status(self, run_id: str) -> str:
        """finished, running (claimed by a live process), incomplete (a folder without
        result.json) or new."""
        folder = self.folder(run_id)
        if (folder / "result.json").is_file():
            return "finished"
        if self.owner(run_id):
            return "running"
        return "incomplete" if folder.is_dir() else "new"

    def _lock_path(self, run_id: str) -> Path:
        self.folder(run_id)  # validates the id
        return self.root.parent / "locks" / f"{run_id}.lock"

    @contextlib.contextmanager
    def claim(self, run_id: str) -> Iterator[bool]:
        """Hold the run's lock for the block; yields False when another process holds it."""
        path = self._lock_path(run_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise _write_error(path, error) from None
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            os.ftruncate(handle, 0)
            os.write(handle, f"{os.getpid()} {socket.gethostname()}".encode())
            try:
                yield True
            finally:
                os.ftruncate(handle, 0)  # released: no owner to report
                fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            os.close(handle)

    def owner(self, run_id: str) -> str | None:
        """ "pid@host" of a live process training the run on this machine, else None."""
        try:
            pid, host = self._lock_path(run_id).read_text().split()
            if host != socket.gethostname():
                return f"{pid}@{host}"  # another machine on a shared store: trust the file
            os.kill(int(pid), 0)
        except (OSError, ValueError):
            return None
        return f"{pid}@{host}"

    def begin(self, run_id: str, config: dict[str, Any], record: dict[str, Any]) -> RunFolder:
        """Start (or restart, after an interruption) the run's folder; a finished run is kept."""
        folder = self.folder(run_id)
        if (folder / "result.json").exists():
            raise RunFailed(f"run {run_id} is finished; its folder is never overwritten")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise _write_error(folder, error) from None
        run = RunFolder(folder)
        write_json(folder / "config.json", config)
        run.write_record(record)
        run.start_attempt()
        return run


class RunFolder:
    def __init__(self, folder: Path):
        self.folder = folder

    def write_record(self, record: dict[str, Any]) -> None:
        write_json(self.folder / "record.json", record)

    def start_attempt(self) -> None:
        """Make sure a new attempt's first event starts a line of its own: an earlier attempt
        killed mid-write may have left a torn last line."""
        path = self.folder / "events.jsonl"
        try:
            with path.open("a+b") as file:  # appends go to the end whatever the position
                size = file.seek(0, os.SEEK_END)
                if size:
                    file.seek(size - 1)
                    if file.read(1) != b"\n":
                        file.write(b"\n")
        except OSError as error:
            raise _write_error(path, error) from None

    def append_event(self, line: str) -> None:
        """One line per event, appended; a reader ignores a torn last line."""
        path = self.folder / "events.jsonl"
        try:
            with path.open("a", encoding="utf-8") as file:
                file.write(line + "\n")
        except OSError as error:
            raise _write_error(path, error) from None

    def finish(self, result: dict[str, Any], predictions: dict[str, list[int]]) -> None:
        write_json(self.folder / "predictions.json", predictions)
        write_json(self.folder / "result.json", result)

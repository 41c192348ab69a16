"""The run store: one folder per run under $MPT_HOME/runs/<run_id>/.

config.json and record.json are written before training; events.jsonl grows one line per event
and is never truncated (a restarted run appends its new attempt after the old ones);
result.json is written atomically at the end and exists only for a finished run, which is never
overwritten. A process training a run holds its claim, an exclusive lock on
$MPT_HOME/locks/<run_id>.lock that the kernel releases when the process dies, so two grids on one
store never train the same run, and a killed run is free to be trained again at once.

A store may be shared, and run ids are predictable: nothing inside $MPT_HOME is trusted. No write
follows a symbolic link below $MPT_HOME (every folder is opened without following links, every
file with O_NOFOLLOW), and a result is used only when its shape is right and it names the folder
that holds it. Files are created with the permissions the umask allows, so collaborators on a
shared store can read each other's results.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import json
import math
import os
import re
import shutil
import socket
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from mpt_engine import paths
from mpt_engine.config import DEFAULT_TASK
from mpt_engine.errors import InvalidInput, RunClaimed, RunFailed
from mpt_engine.event_log import last_event
from mpt_engine.run_state import DONE, STORED, RunStatus
from mpt_engine.safe_files import (
    NO_FOLLOW,
    TEMPORARY,
    json_bytes,
    open_folder,
    read_text,
    unsafe_link,
    write_error,
    write_in,
)
from mpt_engine.tasks import load_task

RUN_ID = re.compile(r"^(?:[a-z0-9]+-)?[a-z]+-k\d+-s\d+-[0-9a-f]{10}$")  # [task-]method-k-s-hash
CLAIM_TRIES = 5  # a status probe holds a lock for microseconds: retry before giving a run up


class BadRun(InvalidInput):
    """A run folder whose files cannot be used: unreadable, malformed, or another run's."""


def check_result(result: Any, run_id: str) -> dict[str, Any]:
    """A stored result as the tables need it, or BadRun naming what is wrong: an accuracy per
    language and an average, finite numbers, and the run id of the folder that holds it (a
    result copied from another run is foreign)."""

    def number(value: Any) -> bool:
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )

    if not isinstance(result, dict):
        raise BadRun(f"{run_id}: result.json is not an object")
    if result.get("run_id") != run_id:
        raise BadRun(f"{run_id}: result.json belongs to run {result.get('run_id')!r}; foreign")
    accuracies = result.get("per_language")
    if not isinstance(accuracies, dict):
        raise BadRun(f"{run_id}: result.json has no per_language accuracies")
    languages = _tested_languages(result, accuracies)
    missing = [lang for lang in languages if lang not in accuracies]
    if missing or not languages:
        absent = ", ".join(missing) or "any language"
        raise BadRun(f"{run_id}: result.json has no accuracy for {absent}")
    wrong = [f"per_language.{lang}" for lang in languages if not number(accuracies[lang])]
    wrong += [name for name in ("average", "seconds") if not number(result.get(name, 0))]
    if "average" not in result or wrong:
        raise BadRun(f"{run_id}: result.json {(wrong or ['average'])[0]} is not a finite number")
    return result


def _tested_languages(result: dict[str, Any], accuracies: dict) -> tuple[str, ...]:
    """The languages a result must hold: its task's (when its task file can no longer be read,
    whatever it holds)."""
    config = result.get("config")
    reference = config.get("task") if isinstance(config, dict) else None
    try:
        return load_task(reference or DEFAULT_TASK).languages
    except InvalidInput:
        return tuple(accuracies)


class RunStore:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else paths.runs_dir()

    @property
    def home(self) -> Path:
        return self.root.parent

    def folder(self, run_id: str) -> Path:
        if not RUN_ID.match(run_id):
            raise InvalidInput(f"not a run id: {run_id!r}")
        return self.root / run_id

    def result(self, run_id: str) -> dict[str, Any] | None:
        """The run's result; None when it has none; BadRun when its result.json cannot be used
        (not UTF-8 JSON, a folder or a link in its place, the wrong shape, another run's)."""
        path = self.folder(run_id) / "result.json"
        if self.folder(run_id).is_symlink():
            raise BadRun(f"{run_id}: the run folder is a symbolic link; foreign")
        try:
            text = read_text(path)
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            reason = "a symbolic link" if getattr(error, "errno", None) == errno.ELOOP else error
            raise BadRun(f"{run_id}: unreadable result.json ({reason})") from None
        try:
            return check_result(json.loads(text), run_id)
        except json.JSONDecodeError as error:
            raise BadRun(f"{run_id}: unreadable result.json ({error})") from None

    def status(self, run_id: str, result: dict[str, Any] | None = None) -> RunStatus:
        """The one status of a run, for every command and screen: finished (a valid
        result.json), running (its lock is held), failed, diverged or interrupted (its last
        event says so), incomplete (a folder with neither: killed, or started elsewhere) or
        new. `result` saves reading result.json again; unreadable: a result.json that cannot
        be used (BadRun says why)."""
        if result is None:
            try:
                result = self.result(run_id)
            except BadRun:
                return RunStatus.UNREADABLE
        if result is not None:
            return RunStatus.FINISHED
        if self.owner(run_id):
            return RunStatus.RUNNING
        folder = self.folder(run_id)
        if not folder.is_dir():
            return RunStatus.NEW
        last = last_event(folder / "events.jsonl")
        if last.get("event") == "run_failed" and last.get("status") in STORED:
            return RunStatus(last["status"])
        return RunStatus.INCOMPLETE

    def _lock_path(self, run_id: str) -> Path:
        self.folder(run_id)  # validates the id
        return self.home / paths.LOCKS / f"{run_id}.lock"

    @contextlib.contextmanager
    def claim(self, run_id: str) -> Iterator[bool]:
        """Hold the run's lock for the block; yields False when another process holds it."""
        path = self._lock_path(run_id)
        with open_folder(self.home, [paths.LOCKS], create=True) as locks:
            try:
                handle = os.open(path.name, os.O_RDWR | os.O_CREAT | NO_FOLLOW, 0o666, dir_fd=locks)
            except OSError as error:
                raise write_error(path, error) from None
        try:
            for attempt in range(CLAIM_TRIES):
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if attempt == CLAIM_TRIES - 1:
                        yield False
                        return
                    time.sleep(0.05)
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
        """ "pid@host" of the process training the run, else None. Liveness is the lock itself,
        not the pid in the file: the kernel (or, on a shared file system, the file server)
        releases a lock when its holder dies, whatever namespace or host it ran in."""
        try:
            handle = os.open(self._lock_path(run_id), os.O_RDONLY | NO_FOLLOW)
        except OSError:
            return None
        try:
            holder = os.read(handle, 256).decode(errors="replace").split()
            if not holder:
                return None  # released: a holder empties the file when it lets go
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return "@".join(holder[:2])
            except OSError:
                return None
            fcntl.flock(handle, fcntl.LOCK_UN)  # nobody held it: the holder died
            return None
        finally:
            os.close(handle)

    def remove(self, run_id: str) -> Path:
        """Move a run's folder to the trash (`trash`); RunClaimed while a process trains it."""
        with self.claim(run_id) as mine:
            if not mine:
                owner = self.owner(run_id) or "another process"
                raise RunClaimed(f"run {run_id} is being trained by {owner}; stop it first")
            return self.trash(run_id)

    def trash(self, run_id: str) -> Path:
        """Move a run's folder, whose claim the caller holds, to $MPT_HOME/trash/<run id>-<time>
        -<pid>[-n], where nothing is lost until the trash is deleted. Both folders are opened
        without following links; a run that is not there (removed meanwhile) is InvalidInput."""
        missing = InvalidInput(f"no run {run_id} in {self.root}")
        folder = self.folder(run_id)
        if folder.is_symlink() or not folder.is_dir():
            raise missing
        stamp = f"{run_id}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        with (
            open_folder(self.home, [paths.RUNS]) as runs,
            open_folder(self.home, [paths.TRASH], create=True) as trash,
        ):
            for attempt in itertools.count(1):  # a rerun and its rm can fall in the same second
                name = stamp if attempt == 1 else f"{stamp}-{attempt}"
                try:
                    os.rename(run_id, name, src_dir_fd=runs, dst_dir_fd=trash)
                    return self.home / paths.TRASH / name
                except FileNotFoundError:
                    raise missing from None
                except OSError as error:
                    if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise write_error(folder, error) from None

    def begin(self, run_id: str, config: dict[str, Any], record: dict[str, Any]) -> RunFolder:
        """Start (or restart, after an interruption) the run's folder; a finished run is kept.
        Temporary files an earlier, killed attempt left behind are removed."""
        run = RunFolder(self.home, run_id)
        with run.open(create=True) as folder:
            try:
                os.stat("result.json", dir_fd=folder, follow_symlinks=False)
                raise RunFailed(f"run {run_id} is finished; its folder is never overwritten")
            except FileNotFoundError:
                pass
            names = os.listdir(folder)
            for name in names:  # refused before anything is written
                if stat.S_ISLNK(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode):
                    raise unsafe_link(run.folder / name)
            for name in filter(TEMPORARY.match, names):  # files, or a checkpoint's folder
                with contextlib.suppress(OSError):
                    if stat.S_ISDIR(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode):
                        shutil.rmtree(name, dir_fd=folder)
                    else:
                        os.unlink(name, dir_fd=folder)
        run.write_json("config.json", config)
        run.write_record(record)
        run.start_attempt()
        return run


class RunFolder:
    """The writes of one run, each through a folder opened without following links."""

    def __init__(self, home: Path, run_id: str):
        self.home, self.run_id = home, run_id
        self.folder = home / paths.RUNS / run_id

    def open(self, create: bool = False):
        return open_folder(self.home, [paths.RUNS, self.run_id], create=create)

    def write_json(self, name: str, value: Any) -> None:
        with self.open() as folder:
            write_in(folder, name, json_bytes(value), self.folder / name)

    def write_record(self, record: dict[str, Any]) -> None:
        self.write_json("record.json", record)

    def _append(self, data: bytes, repair: bool = False) -> None:
        path = self.folder / "events.jsonl"
        try:
            with self.open() as folder:
                flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | NO_FOLLOW
                handle = os.open("events.jsonl", flags, 0o666, dir_fd=folder)
                with os.fdopen(handle, "r+b") as file:
                    if repair:  # an attempt killed mid-write may have left a torn last line
                        size = file.seek(0, os.SEEK_END)
                        if size:
                            file.seek(size - 1)
                            data = b"" if file.read(1) == b"\n" else b"\n"
                    file.write(data)
        except OSError as error:
            raise write_error(path, error) from None

    def start_attempt(self) -> None:
        """Make sure a new attempt's first event starts a line of its own."""
        self._append(b"", repair=True)

    def append_event(self, line: str) -> None:
        """One line per event, appended; a reader ignores a torn last line."""
        self._append((line + "\n").encode("utf-8"))

    def finish(self, result: dict[str, Any], predictions: dict[str, Any]) -> None:
        self.write_json("predictions.json", predictions)
        self.write_json("result.json", result)


def pending_runs(configs: Sequence[Any], status: Callable[[str], str]) -> list[Any]:
    """The runs still to train, given each run id's status (RunStore.status, or the statuses a
    screen already holds): neither finished nor holding a result.json that cannot be used (a
    folder with a result is never overwritten; unusable_runs says why)."""
    return [config for config in configs if status(config.run_id) not in DONE]

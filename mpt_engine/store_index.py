"""Following the run store as it changes, rereading only the runs that did.

Each run folder has a signature made of stat calls (the folder, its events, result and record
files) and, while it is not finished, whether its lock is held: a run that was killed changes
status without a file changing. `refresh` rereads the folders whose signature moved, so a screen
can follow a store of thousands of runs every second. Polling stat works on the network file
systems a Slurm cluster shares, where file-change notifications do not.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from mpt_engine.results import StoredRun, oldest_first, read_or_skip, run_folders
from mpt_engine.run_state import RunStatus
from mpt_engine.store import RUN_ID, RunStore

WATCHED = ("events.jsonl", "result.json", "record.json", "config.json")


class StoreIndex:
    """The runs of a store, kept up to date by `refresh` (safe to call from any thread)."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._signatures: dict[str, tuple] = {}
        self._runs: dict[str, StoredRun] = {}
        self._problems: dict[str, list[str]] = {}  # folder name -> why it is skipped

    def refresh(self) -> bool:
        """Reread the folders that changed, appeared or went; True when any did."""
        with self._lock:
            folders = {folder.name: folder for folder in run_folders(self.store)}
            gone = set(self._signatures) - set(folders)
            for name in gone:
                del self._signatures[name]
                self._runs.pop(name, None)
                self._problems.pop(name, None)
            changed = bool(gone)
            for name, folder in folders.items():
                signature = self._signature(folder)
                if self._signatures.get(name) == signature:
                    continue
                self._signatures[name], self._problems[name] = signature, []
                run = read_or_skip(folder, self._problems[name])
                if run is None:
                    self._runs.pop(name, None)
                else:
                    self._runs[name] = run
                changed = True
            return changed

    def runs(self) -> list[StoredRun]:
        """Every run, oldest first (as results.load_runs orders them)."""
        with self._lock:
            return oldest_first(self._runs.values())

    def run(self, run_id: str) -> StoredRun | None:
        with self._lock:
            return self._runs.get(run_id)

    def warnings(self) -> list[str]:
        with self._lock:
            return [warning for name in sorted(self._problems) for warning in self._problems[name]]

    def _signature(self, folder: Path) -> tuple:
        stats = []
        base = os.fspath(folder)  # strings: a refresh is thousands of stat calls
        for path in (base, *(os.path.join(base, name) for name in WATCHED)):
            try:
                found = os.lstat(path)
            except OSError:
                stats.append(None)
                continue
            stats.append((found.st_mtime_ns, found.st_size, found.st_ino))
        known = self._runs.get(folder.name)
        if (known and known.status is RunStatus.FINISHED) or not RUN_ID.match(folder.name):
            return (*stats, None)
        return (*stats, self.store.owner(folder.name))

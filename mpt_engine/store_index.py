"""Following the run store as it changes, rereading only the runs that did.

Each run folder has a signature made of stat calls (the folder, its events, result and record
files) and, while it is not finished, whether its lock is held: a run that was killed changes
status without a file changing. A finished run's files are only ever replaced (atomically, by a
rename, which moves the folder's own time), so its signature is the folder's stat alone.
`refresh` rereads the folders whose signature moved, so a screen can follow a store of 10,000
runs every second (about 40 ms when nothing changed). Polling stat works on the network file
systems a Slurm cluster shares, where file-change notifications do not.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from mpt_engine.results import ParsedRuns, StoredRun, oldest_first, run_folders, stat_signature
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
        self._parsed: ParsedRuns | None = None  # read at the first refresh, not on a UI thread
        self._ordered: list[StoredRun] | None = None  # runs(), until the next change

    def refresh(self) -> bool:
        """Reread the folders that changed, appeared or went; True when any did."""
        with self._lock:
            if self._parsed is None:
                self._parsed = ParsedRuns(self.store)
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
                self._problems[name] = []
                run = self._parsed.read(folder, self._problems[name])
                if run is None:
                    self._runs.pop(name, None)
                    self._signatures[name] = signature
                else:
                    self._runs[name] = run
                    finished = run.status is RunStatus.FINISHED  # from now on, one stat
                    self._signatures[name] = self._signature(folder) if finished else signature
                changed = True
            self._parsed.save(set(folders))
            if changed:
                self._ordered = None
            return changed

    def runs(self) -> list[StoredRun]:
        """Every run, oldest first (as results.load_runs orders them); do not change the list."""
        with self._lock:
            if self._ordered is None:
                self._ordered = oldest_first(self._runs.values())
            return self._ordered

    def status(self, run_id: str) -> RunStatus:
        with self._lock:
            run = self._runs.get(run_id)
            return RunStatus.NEW if run is None else run.status

    def run(self, run_id: str) -> StoredRun | None:
        with self._lock:
            return self._runs.get(run_id)

    def warnings(self) -> list[str]:
        with self._lock:
            return [warning for name in sorted(self._problems) for warning in self._problems[name]]

    def _signature(self, folder: Path) -> tuple:
        base = os.fspath(folder)  # strings: a refresh is thousands of stat calls
        known = self._runs.get(folder.name)
        if known and known.status is RunStatus.FINISHED:
            return (stat_signature(base),)
        stats = [
            stat_signature(base),
            *(stat_signature(os.path.join(base, name)) for name in WATCHED),
        ]
        if not RUN_ID.match(folder.name):
            return (*stats, None)
        return (*stats, self.store.owner(folder.name))

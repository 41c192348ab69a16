"""Reading the run store: every run folder with its config, status, result and events.

A folder that is not a run (foreign, corrupt) is skipped with a warning, never an error: one
bad folder must not hide the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpt_engine.collapse import Collapse, recorded
from mpt_engine.config import DEFAULT_TASK, RunConfig
from mpt_engine.errors import InvalidInput, MptError
from mpt_engine.event_log import read_events
from mpt_engine.grid import parse_values
from mpt_engine.paths import cache_dir, cache_entry
from mpt_engine.run_state import STORED, RunStatus
from mpt_engine.safe_files import write_atomic
from mpt_engine.settled import settled
from mpt_engine.store import RUN_ID, RunStore, read_text
from mpt_engine.tasks import task_of


@dataclass
class StoredRun:
    run_id: str
    folder: Path
    config: dict[str, Any]
    status: str
    result: dict[str, Any] | None
    record: dict[str, Any]

    @property
    def average(self) -> float | None:
        return self.result["average"] if self.result else None

    @property
    def collapse(self) -> Collapse | None:
        """Whether its test predictions collapsed into one class; None: not known."""
        return recorded(self.result)

    @property
    def collapsed(self) -> bool:
        collapse = self.collapse
        return collapse is not None and collapse.collapsed

    @property
    def started_at(self) -> str:
        return self.record.get("started_at", "")

    def events(self) -> list[dict[str, Any]]:
        return read_events(self.folder / "events.jsonl")


def read_run(folder: Path) -> StoredRun:
    """One run folder; InvalidInput when it is not a usable run: unreadable, a symbolic link, a
    result.json of the wrong shape, or foreign (its config or result is another run's). A run
    killed before its record.json was written has an empty record."""
    if not RUN_ID.match(folder.name):
        raise InvalidInput(f"{folder.name}: not a run folder")
    if folder.is_symlink():
        raise InvalidInput(f"{folder.name}: a symbolic link, not a run folder")
    try:
        config = json.loads(read_text(folder / "config.json"))
        try:
            record = json.loads(read_text(folder / "record.json"))
        except FileNotFoundError:
            record = {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInput(f"{folder.name}: unreadable run ({error})") from None
    if not isinstance(config, dict) or not isinstance(record, dict):
        raise InvalidInput(f"{folder.name}: config.json and record.json must be objects")
    config.setdefault("task", DEFAULT_TASK)  # stored before tasks were data: XNLI
    try:
        run_id = RunConfig.from_dict(config).run_id
    except (InvalidInput, TypeError) as error:
        raise InvalidInput(f"{folder.name}: config.json is not a run's config ({error})") from None
    if run_id != folder.name:
        raise InvalidInput(f"{folder.name}: config.json is the config of run {run_id}; foreign")
    store = RunStore(folder.parent)
    result = store.result(folder.name)
    return StoredRun(folder.name, folder, config, store.status(folder.name, result), result, record)


def run_folders(store: RunStore) -> list[Path]:
    """The store's folders that may be runs (read_run says which are), by name."""
    if not store.root.is_dir():
        return []
    entries = (entry for entry in os.scandir(store.root) if not entry.name.startswith("."))
    folders = [e for e in entries if e.is_dir(follow_symlinks=False) or e.is_symlink()]
    return [Path(entry.path) for entry in sorted(folders, key=lambda entry: entry.name)]


def read_or_skip(folder: Path, warnings: list[str]) -> StoredRun | None:
    """The run in the folder, or None with a warning saying why it is skipped."""
    try:
        return read_run(folder)
    except InvalidInput as error:
        warnings.append(f"skipped {error}")
        return None


def oldest_first(runs: Iterable[StoredRun]) -> list[StoredRun]:
    return sorted(runs, key=lambda run: (run.started_at, run.run_id))


def load_runs(store: RunStore) -> tuple[list[StoredRun], list[str]]:
    """All runs, oldest first, and one warning per folder that was skipped."""
    warnings: list[str] = []
    parsed = ParsedRuns(store)
    folders = run_folders(store)
    runs = [parsed.read(folder, warnings) for folder in folders]
    parsed.save({folder.name for folder in folders})
    return oldest_first(run for run in runs if run is not None), warnings


# Finished runs parsed once. A finished run never changes, so its config, record and result are
# kept in one file per store in the cache folder (MPT_CACHE/runs), each under the stat signature
# of its folder and files once they have settled (settled.py): a fresh `mpt results list` reads a
# 10,000-run store with a listing, a few stat calls per folder and one JSON file instead of
# 30,000 files. The file is only a cache, never part of the store: a folder whose signature
# moved is read (and checked) again, a damaged file is ignored, and without a writable cache
# folder the store is read without it.


PARSED_VERSION = 1
SIGNED = ("config.json", "record.json", "result.json")


class ParsedRuns:
    def __init__(self, store: RunStore) -> None:
        self.path: Path | None = None
        self.entries: dict[str, dict] = {}
        self.changed = False
        with contextlib.suppress(MptError, OSError):
            store_key = hashlib.sha256(os.fsencode(store.root.absolute())).hexdigest()[:20]
            self.path = cache_entry("runs") / f"{store_key}.json"
        with contextlib.suppress(OSError, TypeError, UnicodeDecodeError, json.JSONDecodeError):
            kept = json.loads(read_text(self.path))
            if isinstance(kept, dict) and kept.get("version") == PARSED_VERSION:
                self.entries = kept.get("runs") or {}

    def read(self, folder: Path, warnings: list[str]) -> StoredRun | None:
        """The run in the folder (as results.read_or_skip), from the file when it is a finished
        run whose files have not changed since it was kept."""
        signature = _signature(folder)
        kept = self.entries.get(folder.name)
        if isinstance(kept, dict) and kept.get("signature") == signature:
            return StoredRun(
                folder.name,
                folder,
                kept["config"],
                RunStatus.FINISHED,
                kept["result"],
                kept["record"],
            )
        run = read_or_skip(folder, warnings)
        if run is not None and run.status is RunStatus.FINISHED and _settled(signature):
            self.entries[folder.name] = {
                "signature": signature,
                "config": run.config,
                "record": run.record,
                "result": run.result,
            }
            self.changed = True
        elif self.entries.pop(folder.name, None) is not None:
            self.changed = True
        return run

    def save(self, present: set[str]) -> None:
        """Write the file when it changed, without the runs whose folders are no longer
        `present` (removed, moved to the trash); a cache that cannot be written goes without."""
        for name in set(self.entries) - present:
            del self.entries[name]
            self.changed = True
        if not self.changed or self.path is None:
            return
        text = json.dumps({"version": PARSED_VERSION, "runs": self.entries}, separators=(",", ":"))
        with contextlib.suppress(OSError, MptError):
            write_atomic(self.path, text, root=cache_dir())
        self.changed = False


def _signature(folder: Path) -> list:
    base = os.fspath(folder)
    return [stat_signature(path) for path in (base, *(os.path.join(base, n) for n in SIGNED))]


def _settled(signature: list) -> bool:
    return all(found is None or settled(found[0]) for found in signature)


def stat_signature(path: str) -> list[int] | None:
    """Modification time, size and inode of a file or folder, its link not followed (None when
    absent): what tells that it changed. A list, as JSON gives it back."""
    try:
        found = os.lstat(path)
    except OSError:
        return None
    return [found.st_mtime_ns, found.st_size, found.st_ino]


def parse_where(text: str) -> dict[str, str]:
    """`method=mpt,shots=64` -> {"method": "mpt", "shots": "64"}."""
    where = {}
    for part in filter(None, (item.strip() for item in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(
                f"selection {text!r}: expected field=value pairs like method=mpt,shots=64"
            )
        where[key.strip().replace("-", "_")] = value.strip()
    return where


def select(
    runs: Iterable[StoredRun], where: Mapping[str, str], strict: bool = False
) -> list[StoredRun]:
    """Runs whose config (or status) matches every field=value; numbers compare as numbers, and
    fields a run does not use match anything unless `strict` (a selection that deletes)."""
    wanted = {}
    for key, value in where.items():
        if key == "status":
            if value not in STORED:
                raise InvalidInput(f"unknown status {value!r}; choose one of {', '.join(STORED)}")
            wanted[key] = {value}
        elif value.lower() in ("none", "null"):
            wanted[key] = {None}
        else:
            wanted[key] = set(
                parse_values(key, value, prefix=f"{key}=")
            )  # ranges like seed=1-3 allowed
    return [
        run
        for run in runs
        if all(_matches(run, key, values, strict) for key, values in wanted.items())
    ]


def _matches(run: StoredRun, key: str, values: set, strict: bool) -> bool:
    if key == "status":
        return run.status in values
    value = run.config.get(key)
    # A field the run's method does not use (None) matches any value, so that a selection such
    # as aux_size=48 keeps the SP runs that MPT is compared with.
    return value in values or (value is None and not strict)


def find_run(store: RunStore, reference: str) -> StoredRun:
    """A run by id or unique id prefix; a reference can never leave the store."""
    if not reference or not all(c.isalnum() or c == "-" for c in reference):
        raise InvalidInput(f"not a run id: {reference!r}")
    matches = (
        sorted(p for p in store.root.glob(f"{reference}*") if p.is_dir())
        if store.root.is_dir()
        else []
    )
    exact = [p for p in matches if p.name == reference]
    if exact:
        matches = exact
    if not matches:
        raise InvalidInput(f"no run {reference!r} in {store.root}")
    if len(matches) > 1:
        names = ", ".join(p.name for p in matches[:5])
        raise InvalidInput(
            f"{reference!r} matches {len(matches)} runs ({names}); give more of the id"
        )
    return read_run(matches[0])


class Paces:
    """Seconds per unit of work (`work_units`) of the finished runs, by model and method and by
    model: what `estimate` expects other runs to take. Built once per state of the store (the
    launcher estimates on every keystroke)."""

    def __init__(self, runs: Iterable[StoredRun]) -> None:
        by_method: dict[tuple, list[float]] = {}
        by_model: dict[str, list[float]] = {}
        for run in runs:
            if run.result and "seconds" in run.result:
                config = run.config
                pace = run.result["seconds"] / work_units(config)
                by_method.setdefault((config["model"], config["method"]), []).append(pace)
                by_model.setdefault(config["model"], []).append(pace)
        self.by_method = {key: sum(paces) / len(paces) for key, paces in by_method.items()}
        self.by_model = {key: sum(paces) / len(paces) for key, paces in by_model.items()}

    def estimate(self, configs: Iterable) -> float | None:
        """Expected time of `configs` at the pace of finished runs of the same model and method
        (falling back to the same model); None when nothing similar has run yet."""
        total = 0.0
        for config in map(RunConfig.to_dict, configs):
            pace = self.by_method.get((config["model"], config["method"]))
            pace = pace if pace is not None else self.by_model.get(config["model"])
            if pace is None:
                return None
            total += work_units(config) * pace
        return total


def work_units(config: Mapping[str, Any]) -> float:
    """A run's cost in example passes: each trained example costs about three (forward and
    backward) per view (MPT: English and, unless alpha = 1, both auxiliary sides; PCT: two),
    each evaluated example (dev every epoch, then the test) one. The auxiliary corpus sets the
    length of MPT's epoch even at alpha = 1."""
    shots, batch_size, epochs = config["shots"], config["batch_size"], config["epochs"]
    task = task_of(config)
    trained = len(task.labels) * shots
    aux_pairs = config.get("aux_size") or 0
    steps = epochs * math.ceil(max(trained, aux_pairs) / batch_size)
    aligns = aux_pairs and config.get("alpha", 1.0) < 1.0
    views = 3 if aligns else 2 if config["method"] == "pct" else 1
    tested = len(task.languages) * (config.get("test_limit") or task.test_size or 2000)
    return 3 * steps * batch_size * views + epochs * trained + tested

"""The run store: one folder per run under $MPT_HOME/runs/<run_id>/.

config.json and record.json are written before training; events.jsonl grows one line per event;
result.json is written atomically at the end and exists only for a finished run.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from mpt_engine import paths
from mpt_engine.errors import InvalidInput

RUN_ID = re.compile(r"^[a-z]+-k\d+-s\d+-[0-9a-f]{10}$")


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file, flush, fsync and rename: readers see old or new, never half."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
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
        """finished, incomplete (a folder without result.json) or new."""
        folder = self.folder(run_id)
        if (folder / "result.json").is_file():
            return "finished"
        return "incomplete" if folder.is_dir() else "new"

    def begin(self, run_id: str, config: dict[str, Any], record: dict[str, Any]) -> RunFolder:
        folder = self.folder(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        run = RunFolder(folder)
        write_json(folder / "config.json", config)
        run.write_record(record)
        (folder / "events.jsonl").write_text("", encoding="utf-8")
        return run


class RunFolder:
    def __init__(self, folder: Path):
        self.folder = folder

    def write_record(self, record: dict[str, Any]) -> None:
        write_json(self.folder / "record.json", record)

    def append_event(self, line: str) -> None:
        with (self.folder / "events.jsonl").open("a", encoding="utf-8") as file:
            file.write(line + "\n")

    def finish(self, result: dict[str, Any], predictions: dict[str, list[int]]) -> None:
        write_json(self.folder / "predictions.json", predictions)
        write_json(self.folder / "result.json", result)

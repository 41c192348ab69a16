"""How reading the run store scales: `python benchmarks/store_scale.py N [--keep DIR]`.

Builds an N-run store from one real finished run (a smoke run trained here): each copy gets its
own seed, so ids, configs and results are consistent and every folder is a valid run. Then it
times what the front ends do with a store, and prints one JSON line:

- build: writing the N folders (not a front-end cost);
- load_runs: reading every run once (`mpt results list` and the tables do this);
- index_cold, index_warm: the TUI's StoreIndex, first read and a refresh with nothing changed;
- runs_table: the runs list as a table (with its Setting column);
- cli_list_csv, cli_list_text: `mpt results list` in a fresh process, as data and as rich text.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build(home: Path, count: int) -> float:
    from mpt_engine.config import RunConfig
    from mpt_engine.presets import build_config
    from mpt_engine.runner import execute
    from mpt_engine.store import RunStore

    os.environ["MPT_HOME"] = str(home)
    config = build_config("smoke", {"method": "sp", "epochs": 1, "test_limit": 20}, environ={})
    *_, finished = execute(config, RunStore())
    source = RunStore().folder(finished.run_id)
    record = (source / "record.json").read_text()
    events = (source / "events.jsonl").read_text()
    result = json.loads((source / "result.json").read_text())
    stored = json.loads((source / "config.json").read_text())
    started = time.perf_counter()
    for seed in range(2, count + 1):
        copy = RunConfig.from_dict({**stored, "seed": seed})
        folder = RunStore().folder(copy.run_id)
        folder.mkdir()
        (folder / "config.json").write_text(copy.to_json())
        (folder / "record.json").write_text(record)
        (folder / "events.jsonl").write_text(events)
        (folder / "result.json").write_text(
            json.dumps({**result, "run_id": copy.run_id, "seed": seed})
        )
    return time.perf_counter() - started


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return round(time.perf_counter() - started, 3)


def cli(*args: str) -> float:
    command = [sys.executable, "-m", "mpt_tui", "results", "list", *args]
    return timed(lambda: subprocess.run(command, check=True, capture_output=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, help="runs in the store")
    parser.add_argument("--keep", type=Path, help="build the store here and keep it")
    args = parser.parse_args()
    home = args.keep or Path(tempfile.mkdtemp(prefix="mpt-store-scale-"))
    built = build(home, args.count)

    from mpt_engine.reports import runs_table
    from mpt_engine.results import load_runs
    from mpt_engine.store import RunStore
    from mpt_engine.store_index import StoreIndex

    store = RunStore()
    runs, _ = load_runs(store)
    index = StoreIndex(store)
    timings = {
        "runs": len(runs),
        "build": round(built, 3),
        "load_runs": timed(lambda: load_runs(store)),
        "index_cold": timed(index.refresh),
        "index_warm": timed(index.refresh),
        "runs_table": timed(lambda: runs_table(runs)),
        "cli_list_csv": cli("--format", "csv"),
        "cli_list_text": cli(),
    }
    print(json.dumps(timings))


if __name__ == "__main__":
    main()

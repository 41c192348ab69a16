"""How reading the run store scales: `python benchmarks/store_scale.py N [--keep DIR]`.

Builds an N-run store from one real finished run (a smoke run trained here): each copy gets its
own seed, so ids, configs and results are consistent and every folder is a valid run. Then it
times what the front ends do with a store, and prints one JSON line:

- build: writing the N folders (not a front-end cost);
- load_runs: reading every run once (`mpt results list` and the tables do this);
- index_cold, index_warm: the TUI's StoreIndex, first read and a refresh with nothing changed;
- runs_table: the runs list as a table (with its Setting column);
- cli_list_csv, cli_list_text: `mpt results list` in a fresh process, as data and as rich text;
- the issue's figures, each in a fresh process or app: results_list_s (`mpt results list`, its
  parse cache written by an earlier command), results_table_s (`mpt results table`),
  tui_store_read_s (the app's start until its first read of the store, in a thread, is done),
  tui_results_open_s (then F4 until the runs list is drawn), tui_reload_s (a store poll with
  nothing changed), tui_sort_s (a sort of the runs list, drawn), launcher_keystroke_s (the
  app's work for a key typed in a launcher field: the field checked and the plan line made).
"""

from __future__ import annotations

import argparse
import asyncio
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


def cli(*args: str, command: str = "list") -> float:
    line = [sys.executable, "-m", "mpt_tui", "results", command, *args]
    return timed(lambda: subprocess.run(line, check=True, capture_output=True))


async def tui(count: int) -> dict[str, float]:
    """The app on this store, driven headless by Textual's Pilot."""
    from textual.widgets import DataTable, Input, Static

    from mpt_tui.app import MptApp
    from mpt_tui.screens.results import PAGE_ROWS

    app = MptApp()
    figures = {}
    started = time.perf_counter()
    async with app.run_test(size=(140, 40)) as pilot:
        while len(app.index.runs()) < count:  # the first read of the store, in a thread
            await pilot.pause(0.01)
        figures["tui_store_read_s"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        await pilot.press("f4")
        table = app.screen.query_one("#runs", DataTable)
        while table.row_count < min(count, PAGE_ROWS):
            await pilot.pause(0.01)
        await pilot.pause()
        figures["tui_results_open_s"] = round(time.perf_counter() - started, 3)
        figures["tui_reload_s"] = timed(app.index.refresh)
        started = time.perf_counter()
        app.screen.sort_by("seed")
        await pilot.pause()
        figures["tui_sort_s"] = round(time.perf_counter() - started, 3)
        await pilot.press("f2")
        launcher = app.screen
        field = launcher.query_one("#field-epochs", Input)
        field.focus()
        await pilot.press("2")
        await pilot.pause()

        def keystroke() -> None:  # what the app does for a key typed in a field
            launcher._check_field(field)
            launcher.refresh_plan()

        figures["launcher_keystroke_s"] = timed(keystroke)
        assert "to run" in str(launcher.query_one("#plan", Static).render())
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, help="runs in the store")
    parser.add_argument(
        "--keep", type=Path, help="build the store here and keep it (or reuse it, if there)"
    )
    args = parser.parse_args()
    home = args.keep or Path(tempfile.mkdtemp(prefix="mpt-store-scale-"))
    reused = args.keep is not None and (home / "runs").is_dir()
    os.environ["MPT_HOME"] = str(home)
    built = 0.0 if reused else build(home, args.count)  # --keep DIR again: time the same store

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
    timings["results_list_s"] = cli()
    timings["results_table_s"] = cli(command="table")
    timings.update(asyncio.run(tui(len(runs))))
    print(json.dumps(timings))


if __name__ == "__main__":
    main()

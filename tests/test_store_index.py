"""The store index rereads only what changed, and sees a status change no file records."""

import json
import shutil

from mpt_engine.presets import build_config
from mpt_engine.results import load_runs
from mpt_engine.run_state import RunStatus
from mpt_engine.runner import execute
from mpt_engine.store import RunStore
from mpt_engine.store_index import StoreIndex


def train(seed: int) -> str:
    """A finished smoke run; its id (the stored one names the precision it trained at)."""
    config = build_config("smoke", {"method": "sp", "seed": seed, "epochs": 1}, environ={})
    *_, finished = execute(config, RunStore())
    return finished.run_id


def test_the_index_follows_runs_appearing_changing_and_going(monkeypatch):
    store = RunStore()
    index = StoreIndex(store)
    assert not index.refresh() and index.runs() == []
    first = train(1)
    assert index.refresh()
    assert [(run.run_id, run.status) for run in index.runs()] == [(first, RunStatus.FINISHED)]
    reads = []
    with monkeypatch.context() as patched:
        patched.setattr("mpt_engine.results.ParsedRuns.read", lambda *a: reads.append(a))
        assert not index.refresh() and reads == []  # nothing changed, nothing read

    second = train(2)
    (store.root / "notes").mkdir()  # not a run: skipped with a warning, never an error
    assert index.refresh()
    assert [run.run_id for run in index.runs()] == [first, second]
    assert index.runs() == load_runs(store)[0]
    assert index.warnings() == load_runs(store)[1] and "notes" in index.warnings()[0]

    (store.folder(second) / "result.json").unlink()  # its result gone: no longer finished
    assert index.refresh()
    assert {run.run_id: run.status for run in index.runs()}[second] is RunStatus.INCOMPLETE
    shutil.rmtree(store.folder(first))
    assert index.refresh() and [run.run_id for run in index.runs()] == [second]


def test_a_run_whose_trainer_dies_changes_status_with_no_file_changing():
    store = RunStore()
    config = build_config("smoke", {"method": "sp", "epochs": 1}, environ={})
    index = StoreIndex(store)
    with store.claim(config.run_id):
        store.begin(config.run_id, config.to_dict(), {})
        assert index.refresh()
        assert index.runs()[0].status is RunStatus.RUNNING
        assert not index.refresh()
    assert index.refresh()  # the lock was let go: killed or stopped
    assert index.runs()[0].status is RunStatus.INCOMPLETE
    assert json.loads((store.folder(config.run_id) / "config.json").read_text())


def test_a_run_followed_from_its_folder_has_an_eta_from_its_event_times():
    from datetime import UTC, datetime, timedelta

    from mpt_engine.run_state import RunState

    start = (datetime.now(UTC) - timedelta(seconds=100)).isoformat()
    events = [
        {"event": "run_started", "run_id": "r", "config": {}, "epochs": 1, "steps_per_epoch": 100,
         "device": "cpu", "at": start},
        *({"event": "train_step", "epoch": 1, "step": step, "total_steps": 100, "loss": 1.0,
           "ce": 1.0} for step in range(1, 11)),
    ]  # fmt: skip
    state = RunState.from_events("r", events, RunStatus.RUNNING)
    assert 880 < state.eta_seconds < 920  # 10 steps in 100 s: 90 more take 900 s

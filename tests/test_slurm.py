"""`mpt grid --executor slurm` against a real single-node Slurm (Debian's slurm-wlm and munge),
started here on localhost with a minimal configuration and stopped by pid afterwards."""

import json
import subprocess
import time
from pathlib import Path

from tests.helpers import mpt, mpt_json, mpt_rows, runs_dir

GRID = ("grid", "--preset", "smoke", "--methods", "sp,mpt", "--seeds", "1,2", "--epochs", "2")
SLURM = ("--executor", "slurm", "--gpus-per-run", "0", "--max-parallel", "2", "--time", "10")


def table_trained_here(capsys, monkeypatch, tmp_path, slurm) -> list:
    """The grid's table trained on this machine; then MPT_HOME is the cluster's, still empty."""
    monkeypatch.setenv("SLURM_CONF", slurm)
    monkeypatch.setenv("MPT_HOME", str(tmp_path / "local"))
    mpt_json(capsys, *GRID, "--json")
    local_table = mpt_json(capsys, "results", "table", "--format", "json")
    monkeypatch.setenv("MPT_HOME", str(tmp_path / "cluster"))
    return local_table


def test_a_grid_on_slurm_lands_in_the_store_exactly_once(capsys, monkeypatch, tmp_path, slurm):
    local_table = table_trained_here(capsys, monkeypatch, tmp_path, slurm)
    code, _, err = mpt(capsys, *GRID, *SLURM, "--wait")
    assert code == 0, err
    assert "submitted 4 of 4 runs as Slurm array" in err
    statuses = mpt_rows(capsys, *GRID, "--status", "--json")
    assert {row["status"] for row in statuses} == {"finished"}
    assert all(row["slurm_job"] for row in statuses)
    folders = list(runs_dir().iterdir())
    assert len(folders) == 4
    for folder in folders:
        events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
        assert [e["event"] for e in events].count("run_started") == 1
        record = json.loads((folder / "record.json").read_text())
        assert record["slurm_job"].split("_")[0].isdigit()
    assert mpt_json(capsys, "results", "table", "--format", "json") == local_table

    code, _, err = mpt(capsys, *GRID, *SLURM)
    assert code == 0 and "nothing to submit" in err  # finished runs are never submitted again
    shown = mpt(capsys, "results", "show", folders[0].name)[1]
    assert "slurm job" in shown and "_log.out" in shown
    slurm = mpt_json(capsys, "results", "show", folders[0].name, "--json")["slurm"]
    assert Path(slurm["stdout"]).is_file()  # the task's log, reachable from the run


def test_cancel_a_submitted_grid(capsys, monkeypatch, tmp_path, slurm):
    monkeypatch.setenv("SLURM_CONF", slurm)
    monkeypatch.setenv("MPT_HOME", str(tmp_path / "cancelled"))
    long = ("grid", "--preset", "smoke", "--methods", "sp", "--seeds", "1-3", "--epochs", "5000")
    code, _, err = mpt(
        capsys, *long, "--executor", "slurm", "--gpus-per-run", "0", "--max-parallel", "1"
    )
    assert code == 0, err
    deadline = time.monotonic() + 60
    while True:
        states = [row["status"] for row in mpt_rows(capsys, *long, "--status", "--json")]
        if "running" in states:
            break
        assert time.monotonic() < deadline, states
        time.sleep(1)
    assert states.count("pending") == 2
    code, _, err = mpt(capsys, *long, "--cancel")
    assert code == 0 and "cancelled 3 Slurm tasks:" in err
    deadline = time.monotonic() + 60
    while True:
        queue = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True)
        if not queue.stdout.strip():
            break
        assert time.monotonic() < deadline, queue.stdout
        time.sleep(1)
    states = [row["status"] for row in mpt_rows(capsys, *long, "--status", "--json")]
    assert "pending" not in states and "running" not in states and "finished" not in states
    assert not list(runs_dir().glob("*/result.json"))


def test_a_submission_slurm_refuses_is_one_line_and_exit_3(capsys, monkeypatch, tmp_path, slurm):
    monkeypatch.setenv("SLURM_CONF", slurm)
    monkeypatch.setenv("MPT_HOME", str(tmp_path / "refused"))
    code, _, err = mpt(capsys, *GRID, *SLURM, "--partition", "no-such-partition")
    assert code == 3, err
    assert err.startswith("error: Slurm refused the job array:") and len(err.splitlines()) == 1
    assert "partition" in err.lower()


def test_a_task_killed_by_sigkill_is_resubmitted(capsys, monkeypatch, tmp_path, slurm):
    """What an out-of-memory kill, a lost node or `scancel --signal=KILL` leaves: a lock file
    naming a dead process. The run is not running, and the same command submits it again."""
    monkeypatch.setenv("SLURM_CONF", slurm)
    monkeypatch.setenv("MPT_HOME", str(tmp_path / "killed"))
    long = ("grid", "--preset", "smoke", "--methods", "sp", "--seeds", "1", "--epochs", "5000")
    on_slurm = ("--executor", "slurm", "--gpus-per-run", "0")
    code, _, err = mpt(capsys, *long, *on_slurm)
    assert code == 0, err
    deadline = time.monotonic() + 120
    while True:  # running, and past its set-up: it holds the run's lock
        (row,) = mpt_rows(capsys, *long, "--status", "--json")
        events = runs_dir() / row["run_id"] / "events.jsonl"
        if row["status"] == "running" and events.is_file() and "train_step" in events.read_text():
            break
        assert time.monotonic() < deadline, row
        time.sleep(1)
    subprocess.run(["scancel", "--full", "--signal=KILL", row["slurm_job"]], check=True)
    deadline = time.monotonic() + 60
    while subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip():
        assert time.monotonic() < deadline
        time.sleep(1)
    (row,) = mpt_rows(capsys, *long, "--status", "--json")
    assert row["status"] not in ("running", "pending", "finished"), row
    code, _, err = mpt(capsys, *long, *on_slurm)
    assert code == 0 and "submitted 1 of 1 runs" in err, err
    code, _, err = mpt(capsys, *long, "--cancel")
    assert code == 0, err


def test_runs_per_task_trains_several_runs_in_one_array_task(capsys, monkeypatch, tmp_path, slurm):
    local_table = table_trained_here(capsys, monkeypatch, tmp_path, slurm)
    code, _, err = mpt(capsys, *GRID, *SLURM, "--runs-per-task", "2", "--wait")
    assert code == 0, err
    assert "submitted 4 of 4 runs as Slurm array" in err and "(2 tasks," in err
    statuses = mpt_rows(capsys, *GRID, "--status", "--json")
    assert {row["status"] for row in statuses} == {"finished"}
    tasks = [row["slurm_job"] for row in statuses]
    assert len(set(tasks)) == 2 and all(tasks.count(task) == 2 for task in tasks)
    assert mpt_json(capsys, "results", "table", "--format", "json") == local_table
    code, _, err = mpt(capsys, *GRID, *SLURM, "--runs-per-task", "0")
    assert code == 2 and "--runs-per-task >= 1" in err

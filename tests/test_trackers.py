"""Trackers as event sinks: a smoke run logged to TensorBoard, MLflow and W&B is read back with
each library; `mpt results export --to` replays a stored run; a failing tracker costs the run
nothing but one warning."""

import json
import struct
from pathlib import Path

import pytest

from mpt_engine import trackers
from mpt_engine.errors import InvalidInput
from mpt_engine.languages import XNLI_LANGUAGES
from mpt_engine.presets import build_config
from mpt_engine.runner import Execution, execute
from mpt_engine.store import RunStore
from tests.helpers import mpt

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")
pytest.importorskip("wandb")

TEST_TAGS = {f"test/{language}" for language in XNLI_LANGUAGES} | {"test/average"}


@pytest.fixture
def tracker_homes(monkeypatch, tmp_path):
    """Every tracker writes below tmp_path, offline: MLflow to a file store, W&B offline."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps it, in maintenance
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    return tmp_path


def smoke_run(log=trackers.EXTRAS, **changes):
    config = build_config("smoke", {"method": "mpt", "epochs": 2, **changes}, environ={})
    *_, finished = execute(config, RunStore(), Execution(log=tuple(log)))
    return finished


def tensorboard_scalars(run_id: str) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (folder,) = (Path(RunStore().home) / "tensorboard").glob(f"{run_id}*")
    events = EventAccumulator(str(folder))
    events.Reload()
    return {
        tag: [(point.step, point.value) for point in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
    }


def wandb_records(path: Path) -> list:
    """The records of a W&B offline run file: a 7-byte header, then LevelDB's log format
    (32 KiB blocks; each piece a CRC, a length and a type), each record W&B's protobuf Record."""
    from wandb.proto import wandb_internal_pb2

    data, position, pending, records = path.read_bytes(), 7, b"", []
    assert data[:4] == b":W&B"
    while position + 7 <= len(data):
        left_in_block = 32768 - position % 32768
        if left_in_block < 7:
            position += left_in_block
            continue
        _, length, kind = struct.unpack_from("<IHB", data, position)
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)  # W&B nests "train/loss" as ["train", "loss"]


def test_a_run_logged_to_all_three_trackers_reads_back_in_each(tracker_homes):
    finished = smoke_run()
    run_id = finished.run_id

    scalars = tensorboard_scalars(run_id)
    assert {"train/loss", "train/ce", "train/kl", "dev/accuracy"} | TEST_TAGS <= set(scalars)
    steps = [step for step, _ in scalars["train/loss"]]
    assert steps == list(range(1, len(steps) + 1))
    assert [step for step, _ in scalars["dev/accuracy"]] == [steps[len(steps) // 2 - 1], steps[-1]]
    assert scalars["test/average"][0][1] == pytest.approx(finished.average)

    from mlflow import MlflowClient

    client = MlflowClient()
    (found,) = client.search_runs([client.get_experiment_by_name("mpt").experiment_id])
    assert found.info.run_name == run_id and found.info.status == "FINISHED"
    assert found.data.tags["mpt.run_id"] == run_id
    assert found.data.params["method"] == "mpt" and found.data.params["alpha"] == "0.5"
    assert found.data.metrics["test/average"] == pytest.approx(finished.average)
    losses = client.get_metric_history(found.info.run_id, "train/loss")
    assert [metric.step for metric in losses] == steps

    (run_file,) = (tracker_homes / "wandb").glob("offline-run-*/run-*.wandb")
    records = wandb_records(run_file)
    (run,) = [record.run for record in records if record.WhichOneof("record_type") == "run"]
    assert run.display_name == run_id and f"mpt.run_id={run_id}" in run.tags
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert (config["method"], config["alpha"]) == ("mpt", 0.5)
    history = [
        {_key(item): json.loads(item.value_json) for item in record.history.item}
        for record in records
        if record.WhichOneof("record_type") == "history"
    ]
    logged = set().union(*history)
    assert {"train/loss", "dev/accuracy"} | TEST_TAGS <= logged
    assert [row["test/average"] for row in history if "test/average" in row] == [
        pytest.approx(finished.average)
    ]


def test_finished_runs_replay_from_the_store(capsys, tracker_homes):
    finished = smoke_run(log=())
    assert not (Path(RunStore().home) / "tensorboard").exists()  # nothing logged while it ran
    code, _, err = mpt(capsys, "results", "export", "--to", "tensorboard,mlflow")
    assert code == 0 and "replayed 1 finished runs into tensorboard, mlflow" in err
    scalars = tensorboard_scalars(finished.run_id)
    assert scalars["test/average"][0][1] == pytest.approx(finished.average)
    assert mpt(capsys, "results", "export", "--to", "tensorboard")[0] == 0
    assert tensorboard_scalars(finished.run_id) == scalars  # replaced, not merged: no doubles
    steps = [step for step, _ in scalars["train/loss"]]
    assert len(scalars["test/average"]) == 1 and steps == sorted(set(steps))
    from mlflow import MlflowClient

    client = MlflowClient()
    (found,) = client.search_runs([client.get_experiment_by_name("mpt").experiment_id])
    assert found.data.metrics["test/average"] == pytest.approx(finished.average)


class Broken:
    """A tracker that works until it is given metrics: a server that went down."""

    def start(self, run_id, params, tags):
        pass

    def log(self, metrics, step):
        raise ConnectionError("tracking server unreachable")

    def finish(self, status):
        raise AssertionError("a dropped tracker is not finished")


class NotInstalled:
    def __init__(self):
        raise ImportError("No module named 'wandb'")


def test_a_failing_tracker_leaves_the_run_green_with_one_warning(monkeypatch, caplog):
    monkeypatch.setitem(trackers.TRACKERS, "mlflow", Broken)
    monkeypatch.setitem(trackers.TRACKERS, "wandb", NotInstalled)
    finished = smoke_run(log=("mlflow", "wandb"))
    assert finished.kind == "result" and RunStore().result(finished.run_id) is not None
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert warnings == [
        f"wandb stopped logging run {finished.run_id}: not installed (pip install 'mpt[wandb]')",
        f"mlflow stopped logging run {finished.run_id}: ConnectionError: tracking server "
        "unreachable",
    ]


def test_log_is_not_part_of_a_runs_identity_and_names_are_checked(capsys):
    code, _, err = mpt(capsys, "run", "--preset", "smoke", "--log", "neptune")
    assert code == 2 and "unknown tracker 'neptune' in --log" in err
    with pytest.raises(InvalidInput):
        trackers.parse_trackers("tensorboard,comet")
    assert trackers.parse_trackers(" mlflow, mlflow,wandb ") == ("mlflow", "wandb")


def test_a_tracker_failing_in_a_grids_child_is_one_warning_from_the_grid(capsys, monkeypatch):
    """Grid runs train in child processes: the warning a child writes is said by the grid."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuch://tracker")  # no such store: fails at once
    args = ("grid", "--preset", "smoke", "--methods", "sp", "--seeds", "1", "--epochs", "1")
    code, _, err = mpt(capsys, *args, "--log", "mlflow", "--gpus", "0")  # children, even on a CPU
    assert code == 0, err
    said = [line for line in err.splitlines() if "stopped logging" in line]
    assert len(said) == 1 and said[0].startswith("mpt: mlflow stopped logging run sp-k4-s1-")

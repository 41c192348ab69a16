"""Faults injected on purpose: killed grids, concurrent grids, bad input, divergence, memory,
a full disk, interruption, arbitrary bytes in the store. Each ends in a clear message and a store
that is still correct."""

import errno
import hashlib
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpt_engine import safe_files
from mpt_engine.config import RunConfig
from mpt_engine.data.synthetic import SyntheticSource
from mpt_engine.errors import Diverged, InvalidInput, MptError, RunFailed
from mpt_engine.launch import local_grid, run_grid
from mpt_engine.methods import Losses, SoftPromptMethod
from mpt_engine.presets import build_config
from mpt_engine.results import load_runs, read_events, read_run
from mpt_engine.safe_files import StoreWriteFailed, UnsafeStore, write_atomic
from mpt_engine.store import RunStore
from mpt_engine.train import LossLog
from tests.helpers import mpt, mpt_json, runs_dir, tiny_bert

GRID = ("grid", "--preset", "smoke", "--methods", "sp,mpt", "--seeds", "1,2", "--epochs", "2")


def store_digest(home: Path) -> str:
    """A hash of every file under the store (names and bytes)."""
    digest = hashlib.sha256()
    for path in sorted(home.rglob("*")) if home.exists() else []:
        if path.is_file():
            digest.update(str(path.relative_to(home)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mpt_tui", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def assert_no_partial_results(home: Path) -> None:
    for result in home.glob("runs/*/result.json"):
        values = json.loads(result.read_text())  # parses: never half-written
        assert len(values["per_language"]) == 15


def test_grid_killed_at_random_points_resumes_to_the_same_table(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MPT_HOME", str(tmp_path / "reference"))
    mpt_json(capsys, *GRID, "--json")
    reference = mpt_json(capsys, "results", "table", "--format", "json")

    home = tmp_path / "killed"
    monkeypatch.setenv("MPT_HOME", str(home))
    rng = random.Random(2026)
    for _ in range(3):
        process = spawn(*GRID, "--json")
        stop_after = rng.randint(5, 60)
        for count, _line in enumerate(process.stdout, start=1):
            if count == stop_after:
                process.send_signal(signal.SIGKILL)
                break
        process.wait()
        process.stdout.close()
        process.stderr.close()
        assert_no_partial_results(home)
    code, _, err = mpt(capsys, *GRID)
    assert code == 0, err
    assert_no_partial_results(home)
    assert mpt_json(capsys, "results", "table", "--format", "json") == reference


def test_two_concurrent_grids_run_each_run_exactly_once():
    grid = (*GRID[:6], "1-3", "--epochs", "2", "--json")
    first, second = spawn(*grid), spawn(*grid)
    outputs = [process.communicate(timeout=300)[0] for process in (first, second)]
    assert first.returncode == 0 and second.returncode == 0
    events = [json.loads(line) for output in outputs for line in output.splitlines()]
    started = [event["run_id"] for event in events if event["event"] == "run_started"]
    finished = {event["run_id"] for event in events if event["event"] == "result"}
    assert len(started) == len(set(started)) == 6
    assert finished == set(started)
    for folder in runs_dir().iterdir():
        logged = [e["event"] for e in read_events(folder / "events.jsonl")]
        assert logged.count("run_started") == 1 and logged[-1] == "result"


@pytest.fixture
def data_copy(tmp_path, shared_data):
    """A writable copy of the parts of shared/data a smoke run reads."""
    copy = tmp_path / "data"
    for relative in (
        ["kshot/train/en-4.jsonl", "kshot/dev/en-4.jsonl"]
        + [
            f"xnli/test/{lang}.jsonl"
            for lang in (
                "ar",
                "bg",
                "de",
                "el",
                "en",
                "es",
                "fr",
                "hi",
                "ru",
                "sw",
                "th",
                "tr",
                "ur",
                "vi",
                "zh",
            )
        ]
        + [f"pawsx/dev/{lang}.jsonl" for lang in ("en", "de", "es", "fr", "zh")]
    ):
        target = copy / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((shared_data / relative).read_bytes())
    return copy


def bad_inputs(data_copy: Path, tmp_path: Path, run_id: str):
    """(arguments, environment changes, exit code, message fragment); `run_id` is a finished
    run with a checkpoint."""
    empty_folder = tmp_path / "not-a-model"
    empty_folder.mkdir()
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    broken_model = tmp_path / "broken-model"
    tiny_bert(broken_model)
    (broken_model / "model.safetensors").write_bytes(b"\0" * 64)  # truncated weights
    missing = data_copy.parent / "missing-file"
    (missing / "xnli" / "test").mkdir(parents=True)

    def edited(name: str, relative: str, edit) -> str:
        """A copy of the data folder with one file's lines edited."""
        copy = data_copy.parent / name
        for path in data_copy.rglob("*.jsonl"):
            target = copy / path.relative_to(data_copy)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
        lines = (copy / relative).read_text().splitlines()
        (copy / relative).write_text("".join(line + "\n" for line in edit(lines)))
        return str(copy)

    def replace_line(index: int, text: str):
        return lambda lines: [
            text if number == index else line for number, line in enumerate(lines)
        ]

    corrupt = edited("corrupt", "xnli/test/de.jsonl", replace_line(6, '{"premise": "broken'))
    pawsx_list_idx = edited(
        "list-idx",
        "pawsx/dev/de.jsonl",
        replace_line(3, '{"idx": [3], "sentence1": "a", "sentence2": "b"}'),
    )
    pairs_fifo = tmp_path / "pairs.fifo"
    os.mkfifo(pairs_fifo)
    pair = dict(
        source_premise="a", source_hypothesis="b", target_premise="c", target_hypothesis="d"
    )
    one_line = tmp_path / "one-line.jsonl"
    one_line.write_text(json.dumps(pair) * 40_000)  # 2.8 MB and no newline
    long_sentence = tmp_path / "long-sentence.jsonl"
    long_sentence.write_text(json.dumps({**pair, "target_premise": "word " * 5000}) + "\n")
    empty_pairs = tmp_path / "empty.jsonl"
    empty_pairs.write_text("\n")
    shot = SyntheticSource().paper_split("train", 4)[0]  # a pair the run trains on
    only_shots = tmp_path / "only-shots.jsonl"
    only_shots.write_text(
        json.dumps({**pair, "source_premise": shot.premise, "source_hypothesis": shot.hypothesis})
    )
    smoke = ("run", "--preset", "smoke")
    predict = ("predict", "mpt-k4-s1-0123456789")
    pair = ("--premise", "a", "--hypothesis", "b")
    on_a_cpu_machine = [] if torch.cuda.is_available() else ["cuda"]
    planted = {
        case: plant_symlinks(tmp_path / f"planted-{case}", tmp_path / "outside", case)
        for case in SYMLINKS
    }
    return [
        (("run", "--method", "bert"), {}, 2, "'bert' is not one of"),
        (("run", "--shots", "0"), {}, 2, "shots must be at least 1"),
        (("run", "--shots", "1.5"), {}, 2, "Invalid value for '--shots'"),
        (
            ("predict", "x", "--premise", "a", "--hypothesis", "b", "--lang", "english!"),
            {},
            2,
            "unknown language code",
        ),
        (("run", "--alpha", "2"), {}, 2, "alpha must be"),
        (("run", "--prompt-length", "0"), {}, 2, "--prompt-length must be at least 1"),
        (("run", "--translator", "mlp-2"), {}, 2, "'mlp-2' is not one of"),
        # Lengths, seeds and rates that failed late, allocated gigabytes or diverged at once.
        ((*smoke, "--prompt-length", "600"), {}, 2, "in --max-length 128; lower --prompt-length"),
        ((*smoke, "--prompt-length", "100000000"), {}, 2, "lower --prompt-length"),
        (("run", "--prompt-length", "100000", "--max-length", "16"), {}, 2, "16; lower --prompt"),
        ((*smoke, "--max-length", "1000"), {}, 2, "exceeds the 512 positions of model tiny"),
        (("run", "--seed", str(2**64)), {}, 2, "seed must be at most 18446744073709551615"),
        (("run", "--lr", "inf"), {}, 2, "lr must be a finite number, got inf"),
        (("grid", "--lr", "1e-3,inf", "--dry-run"), {}, 2, "lr must be a finite number"),
        (("run", "--position", "top"), {}, 2, "'top' is not one of"),
        (("grid", "--seeds", "1-x", "--dry-run"), {}, 2, "expected integers or ranges"),
        (("grid", "--seeds", "3-1", "--dry-run"), {}, 2, "expected integers or ranges"),
        (("run", "--model", str(empty_folder)), {}, 3, "is not a model folder"),
        ((*smoke, "--model", str(broken_model)), {}, 3, "cannot load model"),
        (("run", "--model", "not a hub id!"), {}, 2, "neither a local folder nor a hub id"),
        (smoke, {"MPT_DATA_DIR": str(tmp_path / "nowhere")}, 3, "is not a folder"),
        (smoke, {"MPT_DATA_DIR": str(missing)}, 3, "missing data file"),
        (smoke, {"MPT_DATA_DIR": corrupt}, 2, "de.jsonl:7: not valid JSON"),
        # Files that would hang a reader, fill the memory or fail only after training.
        ((*smoke, "--aux", f"file:{pairs_fifo}"), {}, 2, "pairs.fifo is a pipe, not a regular"),
        ((*predict, "--file", pairs_fifo), {}, 2, "pairs.fifo is a pipe, not a regular file"),
        ((*smoke, "--aux", "file:/dev/zero"), {}, 2, "/dev/zero is a device, not a regular"),
        ((*smoke, "--aux", f"file:{tmp_path}"), {}, 2, "is a folder, not a regular file"),
        ((*smoke, "--aux", f"file:{one_line}"), {}, 2, "line longer than 1000000 characters"),
        ((*smoke, "--aux", f"file:{long_sentence}"), {}, 2, "target_premise is 25000 characters"),
        ((*predict, "--premise", "a " * 6000, "--hypothesis", "b"), {}, 2, "--premise is 12000"),
        ((*smoke, "--aux", f"file:{empty_pairs}"), {}, 2, "empty.jsonl is empty"),
        ((*smoke, "--aux", f"file:{only_shots}"), {}, 2, "no usable pairs"),
        (
            smoke,
            {"MPT_DATA_DIR": edited("empty-test", "xnli/test/sw.jsonl", lambda lines: [])},
            2,
            "xnli/test/sw.jsonl is empty",
        ),
        (
            smoke,
            {"MPT_DATA_DIR": edited("empty-train", "kshot/train/en-4.jsonl", lambda lines: [])},
            2,
            "kshot/train/en-4.jsonl is empty",
        ),
        (
            smoke,
            {"MPT_DATA_DIR": edited("empty-dev", "kshot/dev/en-4.jsonl", lambda lines: [" "])},
            2,
            "kshot/dev/en-4.jsonl is empty",
        ),
        (smoke, {"MPT_DATA_DIR": pawsx_list_idx}, 2, "de.jsonl:4: idx must be an integer"),
        (
            (*smoke, "--aux", f"file:{tmp_path / 'no-pairs.jsonl'}"),
            {},
            3,
            "no-pairs.jsonl does not exist",
        ),
        (("results", "show", "../../etc/passwd"), {}, 2, "not a run id"),
        # Messages and exit codes that were wrong or lost.
        (("predict", run_id, *pair, "--device", "foo"), {}, 2, "unknown device 'foo'"),
        *[
            (("predict", run_id, *pair, "--device", device), {}, 2, f"device {device} is not")
            for device in on_a_cpu_machine
        ],
        (("data", "build-paws15", "--data", "foo"), {}, 2, "'foo' is not one of"),
        (("data", "build-paws15", "--device", "foo"), {}, 2, "unknown device 'foo'"),
        (("data", "build-paws15", "--seed", "-1"), {}, 2, "--seed must be at least 0"),
        (("grid", "--seeds", "1-5000", "--dry-run"), {}, 2, "1-5000: a range holds at most 1000"),
        (("results", "table", "--where", "seed=1-5000"), {}, 2, "seed=1-5000: a range holds"),
        (("results", "table", "--where", "seed=1-x"), {}, 2, "seed='1-x': expected integers"),
        (("results", "list"), {"MPT_HOME": str(a_file)}, 2, "MPT_HOME"),
        (smoke, {"MPT_CACHE": str(a_file / "cache")}, 2, "is not a folder"),
        (("tui",), {"MPT_HOME": str(a_file)}, 2, "is not a folder"),
        (("results", "table", "--where", "colour=red"), {}, 2, "unknown option colour"),
        (("results", "table", "--format", "xls"), {}, 2, "unknown format 'xls'"),
        (("results", "list", "--task", "nope"), {}, 2, "unknown --task 'nope'; choose pawsx"),
        (("results", "export", "--to", "foo"), {}, 2, "unknown tracker 'foo' in --to; choose"),
        (("results", "table", "--task", "/etc/passwd"), {}, 2, "unknown --task '/etc/passwd'"),
        *(
            ((*SP_RUN, "--seed", str(seed), "--json"), {"MPT_HOME": str(home)}, 2, "symbolic link")
            for seed, home in planted.values()
        ),
    ]


SP_RUN = ("run", "--preset", "smoke", "--method", "sp", "--epochs", "1")
SYMLINKS = ("lock", "events", "folder")


def sp_run_id(seed: int) -> str:
    """The id `mpt run` gives SP_RUN --seed N: precision auto resolved as on its device."""
    from mpt_engine.device import auto_precision

    overrides = {"method": "sp", "seed": seed, "epochs": 1}
    return build_config(
        "smoke", overrides, environ={}, auto_precision=auto_precision("auto")
    ).run_id


def plant_symlinks(home: Path, outside: Path, case: str) -> tuple[int, Path]:
    """A store where someone planted a symbolic link to a file or folder outside it, where the
    run of SP_RUN --seed N will write: its lock, its events.jsonl or its whole folder."""
    seed = SYMLINKS.index(case) + 1
    run_id = sp_run_id(seed)
    outside.mkdir(exist_ok=True)
    target = outside / f"precious-{case}"
    if case == "folder":
        target.mkdir(exist_ok=True)
        (target / "config.json").write_text("keep me")
    else:
        target.write_text("keep me\n")
    link = {
        "lock": home / "locks" / f"{run_id}.lock",
        "events": home / "runs" / run_id / "events.jsonl",
        "folder": home / "runs" / run_id,
    }[case]
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    return seed, home


def test_symlinks_planted_in_the_store_are_never_followed(capsys, monkeypatch, tmp_path):
    outside = tmp_path / "outside"
    for case in SYMLINKS:
        plant_symlinks(tmp_path / "home", outside, case)
    before, runs = store_digest(outside), store_digest(runs_dir())
    for seed in (1, 2, 3):
        code, _, err = mpt(capsys, *SP_RUN, "--seed", str(seed), "--json")
        assert code == 2 and "symbolic link" in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    grid = ("grid", "--preset", "smoke", "--methods", "sp", "--seeds", "1-3", "--epochs", "1")
    code, _, err = mpt(capsys, *grid)
    assert code != 0 and err.count("symbolic link") == 3 and "Traceback" not in err
    assert store_digest(outside) == before  # not a byte outside the store changed
    assert store_digest(runs_dir()) == runs  # nor in a run folder: refused before any write
    code, _, err = mpt(capsys, "results", "list")
    assert code == 0 and "symbolic link" in err


def test_bad_input_is_one_line_with_the_contracts_exit_code(
    capsys, monkeypatch, tmp_path, data_copy
):
    events = mpt_json(  # a store to protect
        capsys, "run", "--preset", "smoke", "--epochs", "1", "--save-checkpoint", "--json"
    )
    home = Path(os.environ["MPT_HOME"])
    cases = bad_inputs(data_copy, tmp_path, events[-1]["run_id"])
    before, outside = store_digest(home), store_digest(tmp_path / "outside")
    for args, environment, code, fragment in cases:
        with monkeypatch.context() as patch:
            for key, value in environment.items():
                patch.setenv(key, value)
            actual, _, err = mpt(capsys, *args)
        assert actual == code, (args, err)
        assert fragment in err, (args, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, args
        assert store_digest(home) == before, args
        assert store_digest(tmp_path / "outside") == outside, args


def test_foreign_and_corrupt_folders_are_skipped_by_results(capsys):
    mpt_json(capsys, "run", "--preset", "smoke", "--epochs", "1", "--json")
    (runs_dir() / "holiday-photos").mkdir()
    broken = runs_dir() / "mpt-k4-s3-0123456789"
    broken.mkdir()
    (broken / "config.json").write_bytes(b"\xff\xfe not json")
    code, out, err = mpt(capsys, "results", "list", "--format", "csv")
    assert code == 0
    assert len(out.strip().splitlines()) == 2  # header and the one real run
    assert err.count("warning") == 2 and "mpt-k4-s3-0123456789" in err


def test_non_finite_loss_stops_the_run_as_diverged(capsys, monkeypatch):
    original = SoftPromptMethod.loss

    def diverging(self, step):
        losses = original(self, step)
        losses.total = losses.total * float("nan")
        return losses

    monkeypatch.setattr(SoftPromptMethod, "loss", diverging)
    code, _, err = mpt(capsys, "run", "--preset", "smoke")
    assert code == 1 and "loss became nan" in err and "--lr" in err
    (folder,) = runs_dir().iterdir()
    assert not (folder / "result.json").exists()
    assert read_run(folder).status == "diverged"
    code, out, _ = mpt(capsys, "run", "--preset", "smoke", "--json")  # the same run, again
    last = json.loads(out.splitlines()[-1])
    assert code == 1 and last["event"] == "run_failed" and last["status"] == "diverged"
    assert read_events(folder / "events.jsonl")[0]["event"] == "run_started"
    logged = (folder / "events.jsonl").read_text().count('"run_failed"')
    assert logged == 2  # both attempts are kept
    code, out, _ = mpt(capsys, "results", "show", folder.name)  # says why it did not finish
    assert code == 0 and "diverged: loss became nan" in " ".join(out.split())


def test_losses_reported_together_stop_at_the_first_non_finite_step():
    """Losses stay on the device and are read in groups; the group still stops the run at the
    step whose loss was not finite, after reporting the steps before it."""
    log = LossLog(epoch=2, total_steps=10)
    for step, value in [(3, 1.0), (4, float("inf")), (5, float("nan"))]:
        log.add(step, Losses(total=torch.tensor(value), ce=torch.tensor(0.5)))
    reported = log.report()
    first = next(reported)
    assert (first.epoch, first.step, first.loss, first.ce, first.kl) == (2, 3, 1.0, 0.5, None)
    with pytest.raises(Diverged, match="loss became inf at epoch 2, step 4; try a lower"):
        next(reported)
    log.add(6, Losses(total=torch.tensor(2.0), ce=torch.tensor(1.0), kl=torch.tensor(0.25)))
    assert [(s.step, s.kl) for s in log.report()] == [(6, 0.25)]  # the earlier group is gone


def test_out_of_memory_names_the_batch_size_options(capsys, monkeypatch):
    def out_of_memory(self, step):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(SoftPromptMethod, "loss", out_of_memory)
    code, _, err = mpt(capsys, "run", "--preset", "smoke", "--json")  # stderr: the error alone
    assert code == 1 and "out of memory" in err
    assert "--batch-size" in err and "--eval-batch-size" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_full_disk_keeps_what_was_written(tmp_path, monkeypatch):
    path = tmp_path / "result.json"
    path.write_text('{"old": true}')

    def no_space(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(StoreWriteFailed, match="the disk is full"):
        write_atomic(path, '{"new": true}')
    assert path.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temporary file left


def test_full_disk_during_a_run_is_one_line_and_no_result(capsys, monkeypatch):
    from mpt_engine import store

    def no_space(self, result, predictions):
        raise safe_files.write_error(self.folder / "result.json", OSError(errno.ENOSPC, "full"))

    monkeypatch.setattr(store.RunFolder, "finish", no_space)
    code, _, err = mpt(capsys, "run", "--preset", "smoke", "--epochs", "1")
    assert code == 1 and "the disk is full" in err
    (folder,) = runs_dir().iterdir()
    assert not (folder / "result.json").exists()
    assert read_run(folder).status == "failed"


LONG_RUN = ("run", "--preset", "smoke", "--epochs", "300", "--json")
LONG_GRID = ("grid", "--preset", "smoke", "--methods", "sp", "--seeds", "1", "--epochs", "300")


@pytest.mark.parametrize(
    ("stop", "command"),
    [
        (signal.SIGINT, LONG_RUN),
        (signal.SIGTERM, LONG_RUN),
        (signal.SIGHUP, LONG_RUN),
        (signal.SIGTERM, (*LONG_GRID, "--json")),
        (signal.SIGINT, (*LONG_GRID, "--runs-per-gpu", "2", "--json")),
    ],
)
def test_interrupt_exits_130_and_leaves_the_run_incomplete(stop, command):
    process = spawn(*command)
    for line in process.stdout:
        if json.loads(line)["event"] == "train_step":
            process.send_signal(stop)
            break
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err.strip().splitlines()[-1] == "error: interrupted"
    (folder,) = runs_dir().iterdir()
    assert not (folder / "result.json").exists()
    assert read_run(folder).status == "interrupted"
    last = json.loads(out.strip().splitlines()[-1])  # --json ends with the run's last event
    assert (last["event"], last["status"], last["run_id"]) == (
        "run_failed",
        "interrupted",
        folder.name,
    )


def test_a_finished_run_is_never_reopened(capsys):
    events = mpt_json(capsys, "run", "--preset", "smoke", "--epochs", "1", "--json")
    store = RunStore()
    with pytest.raises(RunFailed, match="never overwritten"):
        store.begin(events[-1]["run_id"], {}, {})


def test_a_restarted_run_appends_its_attempt_to_the_old_events(tmp_path):
    store = RunStore(tmp_path / "runs")
    run_id = RunConfig(method="sp").run_id
    first = store.begin(run_id, {}, {})
    first.append_event(json.dumps({"event": "run_started", "attempt": 1}))
    first.append_event(json.dumps({"event": "run_failed", "status": "interrupted"}))
    with (first.folder / "events.jsonl").open("a") as file:
        file.write('{"event": "train_st')  # killed mid-line
    second = store.begin(run_id, {}, {})
    second.append_event(json.dumps({"event": "run_started", "attempt": 2}))
    lines = (second.folder / "events.jsonl").read_text().splitlines()
    assert len(lines) == 4 and lines[0] == json.dumps({"event": "run_started", "attempt": 1})
    assert read_events(second.folder / "events.jsonl") == [{"event": "run_started", "attempt": 2}]


def test_a_claimed_run_is_left_to_its_owner(tmp_path):
    store = RunStore(tmp_path / "runs")
    (config,) = local_grid("smoke", {"method": ["sp"], "seed": [1], "epochs": [1]}, environ={})
    with store.claim(config.run_id) as mine:
        assert mine and store.status(config.run_id) == "running"
        updates = list(run_grid([config], store))
        with store.claim(config.run_id) as theirs:
            assert not theirs
    assert [event.kind for _, event in updates] == ["run_skipped"]
    assert store.status(config.run_id) == "new"


def test_trash_names_never_collide_and_a_vanished_run_is_no_run(tmp_path, monkeypatch):
    """`mpt run --rerun` then `mpt results rm` in one process and one second (as CI did)."""
    monkeypatch.setattr(time, "strftime", lambda _: "20261130T120000")
    store = RunStore(tmp_path / "runs")
    run_id = RunConfig(method="sp").run_id
    for attempt in range(3):
        store.begin(run_id, {"attempt": attempt}, {})
        store.remove(run_id)
    kept = sorted((tmp_path / "trash").iterdir())
    assert [json.loads((folder / "config.json").read_text()) for folder in kept] == [
        {"attempt": 0},
        {"attempt": 1},
        {"attempt": 2},
    ]
    assert not store.folder(run_id).exists()
    store.begin(run_id, {}, {})
    with store.claim(run_id):  # a second `mpt results rm` came first
        shutil.rmtree(store.folder(run_id))
        with pytest.raises(InvalidInput, match="no run"):
            store.trash(run_id)


def test_a_trash_planted_as_a_link_is_refused_and_the_run_kept(tmp_path):
    store = RunStore(tmp_path / "runs")
    run_id = RunConfig(method="sp").run_id
    store.begin(run_id, {}, {})
    (tmp_path / "outside").mkdir()
    (tmp_path / "trash").symlink_to(tmp_path / "outside")
    with pytest.raises(UnsafeStore, match="symbolic link"):
        store.remove(run_id)
    assert (store.folder(run_id) / "config.json").is_file()
    assert not list((tmp_path / "outside").iterdir())


FIELDS = [name for name in RunConfig.__dataclass_fields__]
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 600),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["mpt", "sp", "linear-2", "suffix", "pawsx", "file:x", "hub", "bf16", "tiny"]),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=6))
def test_config_validation_accepts_or_names_the_problem(values):
    try:
        config = RunConfig(**values)
    except InvalidInput as error:
        assert str(error)
        return
    resolved = config.resolved()
    assert RunConfig.from_dict(resolved.to_dict()).run_id == config.run_id


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(["config.json", "record.json", "result.json", "events.jsonl"]),
    st.binary(max_size=200),
)
def test_store_reading_survives_arbitrary_bytes(tmp_path, name, content):
    store = RunStore(tmp_path / "runs")
    config = RunConfig(method="mpt", shots=4, seed=1).resolved()
    folder = store.folder(config.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(config.to_json())
    (folder / "record.json").write_text("{}")
    (folder / "events.jsonl").write_text("")
    (folder / "result.json").unlink(missing_ok=True)
    (folder / name).write_bytes(content)
    try:
        run = read_run(folder)
        assert run.status in (
            "finished",
            "incomplete",
            "failed",
            "diverged",
            "interrupted",
            "running",
        )
        run.events()
    except MptError as error:
        assert isinstance(error, InvalidInput)
    runs, warnings = load_runs(store)
    assert len(runs) + len(warnings) == 1


def read_only_runner(folder: Path) -> list[str]:
    """A command prefix that runs a command with `folder` mounted read-only (a tmpfs in a
    private mount namespace: chmod would not stop root), or a skip saying why not."""
    namespace = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]
    script = f'mount -t tmpfs -o ro none {shlex.quote(str(folder))} && exec "$@"'
    prefix = [*namespace, "sh", "-c", script, "sh"]
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    probe = subprocess.run([*prefix, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a read-only folder here: {probe.stderr.strip()}")
    return prefix


def test_a_read_only_cache_or_plot_folder_is_named_in_one_line(capsys, tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    prefix = read_only_runner(folder)
    events = mpt_json(capsys, "run", "--preset", "smoke", "--epochs", "1", "--json")
    home = Path(os.environ["MPT_HOME"])
    before = store_digest(home)
    cases = [
        (
            {"MPT_CACHE": str(folder / "cache")},
            ("run", "--preset", "smoke", "--seed", "2"),
            "MPT_CACHE",
        ),
        ({}, ("results", "show", events[-1]["run_id"], "--plot", folder / "loss.png"), "--plot"),
    ]
    for environment, args, fragment in cases:
        completed = subprocess.run(
            [*prefix, sys.executable, "-m", "mpt_tui", *map(str, args)],
            env={**os.environ, **environment},
            capture_output=True,
            text=True,
            timeout=300,
        )
        err = completed.stderr
        assert completed.returncode == 2, (args, err)
        assert fragment in err and "is not writable (a read-only file system" in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert store_digest(home) == before, args


def write_pairs(path: Path, rows: int = 12, word: str = "cat") -> None:
    path.write_text(
        "".join(
            json.dumps(
                {
                    "source_premise": f"The {word} number {i} sat.",
                    "source_hypothesis": f"A {word} sat {i}.",
                    "target_premise": f"Die Katze {i} sass.",
                    "target_hypothesis": f"Eine Katze sass {i}.",
                    "language": "de",
                }
            )
            + "\n"
            for i in range(rows)
        )
    )


def test_edited_data_is_a_new_run_never_the_old_result(capsys, monkeypatch, tmp_path, data_copy):
    monkeypatch.setenv("MPT_DATA_DIR", str(data_copy))
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    write_pairs(first / "pairs.jsonl")
    command = ("run", "--preset", "smoke", "--epochs", "1", "--aux", "file:pairs.jsonl")
    command += ("--aux-size", "8", "--method", "mpt", "--json")
    monkeypatch.chdir(first)
    trained = mpt_json(capsys, *command)[-1]
    code, _, err = mpt(capsys, *command)
    assert code == 0 and "already finished" in err  # the same data: the same run

    def planned() -> str:
        grid = ("grid", *command[1:-3], "--methods", "mpt", "--seeds", "1", "--dry-run", "--json")
        (row,) = [mpt_json(capsys, *grid)]
        return row["run_id"] if row["status"] == "finished" else "new"

    monkeypatch.chdir(second)  # the same relative name, other content
    write_pairs(second / "pairs.jsonl", word="dog")
    assert planned() == "new"
    write_pairs(second / "pairs.jsonl")  # the same content elsewhere: where files lie is no matter
    assert planned() == trained["run_id"]
    labels = data_copy / "kshot/train/en-4.jsonl"
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    for row in rows:
        row["gold"] = "contradiction" if row["gold"] == "entailment" else "entailment"
    labels.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert planned() == "new"
    retrained = mpt_json(capsys, *command)  # trains: it does not show the old result
    assert retrained[0]["event"] == "run_started"
    assert retrained[-1]["run_id"] != trained["run_id"]
    assert read_run(runs_dir() / trained["run_id"]).status == "finished"  # the old run stays


def test_a_folder_holding_another_runs_files_is_foreign(capsys):
    grid = ("grid", "--preset", "smoke", "--methods", "sp", "--seeds", "1-3", "--epochs", "1")
    mpt_json(capsys, *grid, "--json")
    first, second, third = (runs_dir() / sp_run_id(seed) for seed in (1, 2, 3))
    (second / "result.json").write_bytes((first / "result.json").read_bytes())  # copied
    config = json.loads((third / "config.json").read_text())
    (third / "config.json").write_text(json.dumps(config | {"lr": 0.5}))  # edited by hand
    for command in (("results", "list", "--format", "csv"), ("results", "table")):
        code, out, err = mpt(capsys, *command)
        assert code == 0 and err.count("foreign") == 2, err
        assert "Traceback" not in err
    code, out, _ = mpt(capsys, "results", "list", "--format", "csv")
    assert len(out.strip().splitlines()) == 2  # the header and the one run that is its own


def test_numbers_have_one_spelling_in_a_run_id(capsys):
    grid = ("grid", "--preset", "smoke", "--alpha", "0.0,-0.0,0", "--dry-run", "--json")
    assert len(mpt_json(capsys, *grid)) == 4  # 2 seeds x (sp, mpt with one alpha, not two)
    assert RunConfig(lr=1).run_id == RunConfig(lr=1.0).run_id
    assert RunConfig(alpha=-0.0).to_json() == RunConfig(alpha=0).to_json()


def test_run_files_follow_the_umask(capsys):
    previous = os.umask(0o022)
    try:
        (event,) = mpt_json(capsys, *SP_RUN, "--json")[-1:]
    finally:
        os.umask(previous)
    folder = runs_dir() / event["run_id"]
    lock = runs_dir().parent / "locks" / f"{event['run_id']}.lock"
    for path in [*folder.iterdir(), lock]:
        assert path.stat().st_mode & 0o777 == 0o644, path


def unshare_pid_namespace() -> None:
    try:
        probe = subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True)
    except FileNotFoundError:
        pytest.skip("unshare (util-linux) is not installed")
    if probe.returncode != 0:
        pytest.skip(f"unshare --pid is not permitted here: {probe.stderr.decode().strip()}")


def test_a_run_killed_in_a_pid_namespace_is_not_running_forever(capsys):
    unshare_pid_namespace()
    command = [sys.executable, "-m", "mpt_tui", *SP_RUN[:-1], "2", "--json"]
    process = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--kill-child", *command],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    for line in process.stdout:
        event = json.loads(line)
        if event["event"] == "run_started":
            run_id = event["run_id"]
        if event["event"] == "train_step":
            process.send_signal(signal.SIGKILL)  # and the kernel kills its child, pid 1 inside
            break
    process.wait()
    process.stdout.close()
    lock = runs_dir().parent / "locks" / f"{run_id}.lock"
    deadline = time.monotonic() + 30
    while RunStore().owner(run_id) and time.monotonic() < deadline:
        time.sleep(0.2)  # the child dies a moment after its parent
    assert lock.read_text().split()[0] == "1"  # the dead run's pid in its namespace
    assert RunStore().status(run_id) == "incomplete"
    grid = ("grid", "--preset", "smoke", "--methods", "sp", "--seeds", "1", "--epochs", "2")
    events = mpt_json(capsys, *grid, "--json")
    trained = [e["event"] for e in events if e["run_id"] == run_id]
    assert trained[0] == "run_started" and trained[-1] == "result"  # trained again


def test_a_torn_tokenizer_cache_entry_is_rebuilt(monkeypatch, tmp_path):
    from mpt_engine.backbone import tiny_tokenizer

    monkeypatch.setenv("MPT_CACHE", str(tmp_path / "cache"))
    corpus = ["the cat sat on the mat", "a dog ran in the park"] * 20
    vocabulary = tiny_tokenizer(corpus).get_vocab()
    (entry,) = (tmp_path / "cache" / "tokenizers").iterdir()
    torn = entry / "tokenizer.json"
    torn.write_bytes(torn.read_bytes()[: torn.stat().st_size // 2])  # a kill mid-write
    assert tiny_tokenizer(corpus).get_vocab() == vocabulary
    assert [p.name for p in (tmp_path / "cache" / "tokenizers").iterdir()] == [entry.name]


def test_processes_building_one_tokenizer_at_once_all_read_a_whole_one(tmp_path):
    script = (
        "from mpt_engine.backbone import tiny_tokenizer;"
        "print(len(tiny_tokenizer(['the cat sat on the mat %d' % i for i in range(300)])))"
    )
    env = dict(os.environ, MPT_CACHE=str(tmp_path / "cache"))
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    assert len({out for out, _ in outputs}) == 1
    assert not list((tmp_path / "cache" / "tokenizers").glob(".*"))  # no temporary left


def test_a_builder_finishing_second_keeps_the_entry_another_process_put_in_place(tmp_path):
    """It used to move that good entry aside to put its own: a process loading the entry in
    between found nothing (transformers then took the folder for a hub id)."""
    from mpt_engine.paths import cached

    entry = tmp_path / "entry"

    def build(partial: Path) -> None:
        partial.mkdir()
        (partial / "value").write_text("mine")
        entry.mkdir()  # meanwhile another process finished the same entry
        (entry / "value").write_text("theirs")

    assert cached(entry, build, lambda path: (path / "value").read_text()) == "theirs"
    assert not list(tmp_path.glob(".*"))  # no temporary left


def test_a_cache_entry_whose_build_fails_leaves_nothing(tmp_path):
    from mpt_engine.paths import cached

    def build(partial: Path) -> None:
        partial.mkdir()
        (partial / "half").write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        cached(tmp_path / "entry", build, lambda path: path)
    assert list(tmp_path.iterdir()) == []


def test_a_killed_attempts_temporary_files_are_removed_on_restart(capsys):
    folder = runs_dir() / sp_run_id(1)
    folder.mkdir(parents=True)
    for name in (".result.json.1a2b3c4d.tmp", ".config.json.tmp8k2j_x.tmp"):
        (folder / name).write_text("{")
    mpt_json(capsys, *SP_RUN, "--json")
    assert not list(folder.glob(".*.tmp"))


def test_an_interrupt_just_after_the_result_keeps_the_run_finished(capsys, monkeypatch):
    from mpt_engine import store

    original = store.RunFolder.finish

    def finish_then_interrupt(self, result, predictions):
        original(self, result, predictions)
        raise KeyboardInterrupt

    monkeypatch.setattr(store.RunFolder, "finish", finish_then_interrupt)
    code, out, err = mpt(capsys, *SP_RUN, "--json")
    last = json.loads(out.splitlines()[-1])
    assert code == 0 and last["event"] == "result", err
    folder = runs_dir() / last["run_id"]
    assert read_run(folder).status == "finished"
    assert "interrupted" not in (folder / "events.jsonl").read_text()


def test_a_run_interrupted_before_its_record_is_listed_as_interrupted(capsys, monkeypatch):
    from mpt_engine import store

    def interrupted(self, record):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(store.RunFolder, "write_record", interrupted)
        code, _, _ = mpt(capsys, *SP_RUN)
    assert code == 130
    (folder,) = runs_dir().iterdir()
    assert not (folder / "record.json").exists()
    assert read_run(folder).status == "interrupted"
    code, out, err = mpt(capsys, "results", "list", "--format", "csv")
    assert code == 0 and "interrupted" in out and "warning" not in err


BAD_RESULTS = {
    "missing a language": lambda result: {**result, "per_language": {"en": 50.0}},
    "missing the average": lambda result: {k: v for k, v in result.items() if k != "average"},
    "NaN": lambda result: {**result, "average": float("nan")},
    "a string": lambda result: {**result, "per_language": {**result["per_language"], "de": "x"}},
}


def copy_run(folder: Path, seed: int) -> Path:
    """Another finished SP smoke run, as if trained with `seed` (its numbers are the same)."""
    values = json.loads((folder / "config.json").read_text())
    config = RunConfig.from_dict(values | {"seed": seed})
    copy = runs_dir() / config.run_id
    copy.mkdir()
    for name in ("record.json", "events.jsonl"):
        (copy / name).write_bytes((folder / name).read_bytes())
    (copy / "config.json").write_text(config.to_json())
    result = json.loads((folder / "result.json").read_text())
    (copy / "result.json").write_text(json.dumps(result | {"run_id": config.run_id, "seed": seed}))
    return copy


def test_a_bad_result_file_is_skipped_everywhere_with_a_warning(capsys):
    (event,) = mpt_json(capsys, *SP_RUN, "--json")[-1:]
    good = runs_dir() / event["run_id"]
    folders = [copy_run(good, seed) for seed in range(2, len(BAD_RESULTS) + 5)]
    assert folders[-1].name == sp_run_id(len(BAD_RESULTS) + 4)
    for folder, damage in zip(folders, BAD_RESULTS.values(), strict=False):
        result = json.loads((folder / "result.json").read_text())
        (folder / "result.json").write_text(json.dumps(damage(result)))
    (folders[-3] / "result.json").write_bytes(b"\xff\xfe{}")  # not UTF-8
    (folders[-2] / "result.json").unlink()
    (folders[-2] / "result.json").mkdir()  # a folder in its place
    bad = len(BAD_RESULTS) + 2
    for command in (
        ("results", "list"),
        ("results", "table"),
        ("results", "compare", "seed=1", f"seed={len(BAD_RESULTS) + 4}"),
    ):
        code, _, err = mpt(capsys, *command)
        assert code in (0, 2) and "Traceback" not in err, (command, err)
        assert err.count("warning") == bad, (command, err)
    seeds = f"1-{len(BAD_RESULTS) + 4}"
    grid = ("grid", "--preset", "smoke", "--methods", "sp", "--seeds", seeds, "--epochs", "1")
    code, out, err = mpt(capsys, *grid, "--json")
    assert "Traceback" not in err
    assert code == 0 and err.count("skipped") == bad  # nothing to train, none lost
    results = [json.loads(line) for line in out.splitlines()]  # the usable finished runs alone
    assert len(results) == 2 and {row["event"] for row in results} == {"result"}

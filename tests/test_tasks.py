"""Tasks as data: XNLI keeps its run ids, PAWS-X runs offline on the staged files, a user's own
task file trains every method and fills the tables, and a bad task file names its bad key."""

import os

import pytest

from mpt_engine.config import RunConfig
from mpt_engine.data import load_task_data
from mpt_engine.errors import InvalidInput
from mpt_engine.presets import build_config
from mpt_engine.tasks import load_task, parse
from tests.helpers import mpt, mpt_json, mpt_rows, write_colour_task

# Ids computed by mpt before tasks were data (commit c8ab3a0): adding tasks changes none.
PINNED = [
    ({}, "mpt-k4-s1-f8dcd1aa92"),
    ({"method": "sp", "shots": 64, "seed": 3}, "sp-k64-s3-7cb736fd64"),
    ({"method": "ft", "shots": 8, "data": "local", "data_digest": "abc123"}, "ft-k8-s1-3c57cc8882"),
    (
        {"method": "pct", "shots": 5, "seed": 2, "model": "tiny", "precision": "fp32"},
        "pct-k5-s2-e293ce0872",
    ),
]
PINNED_LOCAL = [  # with MPT_DATA_DIR: the data files' roles and hashes are unchanged too
    ({"method": "mpt", "shots": 4, "model": "tiny"}, "mpt-k4-s1-da37df0d1e"),
    ({"method": "mpt", "shots": 4, "model": "tiny", "aux": "xnli-dev"}, "mpt-k4-s1-1f7b5081b8"),
    ({"method": "sp", "shots": 16, "model": "tiny"}, "sp-k16-s1-b2d5b522fa"),
]


@pytest.mark.parametrize(("values", "run_id"), PINNED)
def test_adding_tasks_changes_no_xnli_run_id(values, run_id):
    assert RunConfig(**values).run_id == run_id
    assert RunConfig(task="xnli", **values).run_id == run_id


@pytest.mark.parametrize(("values", "run_id"), PINNED_LOCAL)
def test_xnli_runs_on_local_data_keep_their_ids(shared_data, values, run_id):
    assert build_config(None, values, environ={"MPT_DATA_DIR": str(shared_data)}).run_id == run_id


def test_other_tasks_have_ids_of_their_own():
    xnli, pawsx = RunConfig(split="sampled"), RunConfig(task="pawsx")
    assert pawsx.run_id.startswith("pawsx-mpt-k4-s1-") and pawsx.run_id[6:] != xnli.run_id
    with pytest.raises(InvalidInput, match="fixed k-shot splits are XNLI's"):
        RunConfig(task="pawsx", split="paper")


def test_pawsx_offline_holds_the_shots_out_of_every_test(shared_data, monkeypatch):
    monkeypatch.setenv("MPT_DATA_DIR", str(shared_data))
    config = build_config(None, {"task": "pawsx", "method": "sp", "model": "tiny"})
    data = load_task_data(config)
    assert list(data.test) == ["de", "en", "es", "fr", "ja", "ko", "zh"]
    assert len(data.train) == len(data.dev) == 8 and not set(data.train) & set(data.dev)
    assert {len(rows) for rows in data.test.values()} == {2000 - 16}
    assert not set(data.train + data.dev) & set(data.test["en"])  # those rows are held out


def test_a_pawsx_run_ends_with_seven_languages_and_shows_in_its_table(
    capsys, shared_data, monkeypatch, tmp_path
):
    monkeypatch.setenv("MPT_DATA_DIR", str(shared_data))
    args = ("run", "--task", "pawsx", "--method", "mpt", "--shots", "4", "--preset", "smoke")
    *_, result = mpt_json(capsys, *args, "--epochs", "2", "--save-checkpoint", "--json")
    pairs = tmp_path / "pairs.jsonl"  # the task's own fields, as in its data files
    pairs.write_text(
        '{"sentence1": "Ein Satz.", "sentence2": "Ein anderer Satz.", "lang": "de"}\n'
        '{"sentence1": "A sentence.", "sentence2": "Another one.", "lang": null}\n'
    )
    predicted = mpt_json(capsys, "predict", result["run_id"], "--file", pairs, "--json")
    assert [row["lang"] for row in predicted] == ["de", "en"]
    assert {row["label"] for row in predicted} <= {"different", "paraphrase"}
    pairs.write_text('{"sentence1": "A sentence."}\n')
    code, _, err = mpt(capsys, "predict", result["run_id"], "--file", pairs)
    assert code == 2 and ":1: missing text field(s) sentence2; a line gives premise" in err
    assert result["run_id"].startswith("pawsx-mpt-k4-")
    assert list(result["per_language"]) == ["de", "en", "es", "fr", "ja", "ko", "zh"]
    table = mpt_json(capsys, "results", "table", "--task", "pawsx", "--format", "json")
    assert table["title"] == "Accuracy (%) on PAWSX"
    assert table["columns"] == ["DE", "EN", "ES", "FR", "JA", "KO", "ZH", "Avg."]
    code, _, err = mpt(capsys, "results", "table", "--task", "xnli")
    assert code == 2 and "no finished runs" in err


def test_a_users_task_file_trains_every_method_and_fills_the_tables(capsys, tmp_path):
    task = write_colour_task(tmp_path)
    grid = ("grid", "--task", task, "--methods", "ft,sp,pct,mpt", "--shots", "4", "--seeds", "1")
    options = ("--model", "tiny", "--data", "local", "--epochs", "2", "--batch-size", "8")
    aux = ("--aux", f"file:{tmp_path / 'aux.jsonl'}", "--aux-size", "16", "--json")
    events = mpt_rows(capsys, *grid, *options, *aux)
    results = [event for event in events if event["event"] == "result"]
    assert sorted(result["method"] for result in results) == ["ft", "mpt", "pct", "sp"]
    for result in results:
        assert result["run_id"].startswith(f"task-{result['method']}-k4-s1-")
        assert list(result["per_language"]) == ["en", "de", "fr"]
    table = mpt_json(capsys, "results", "table", "--task", task, "--format", "json")
    assert table["title"] == "Accuracy (%) on COLOURS"
    assert table["columns"] == ["EN", "DE", "FR", "Avg."]
    assert sorted(row["labels"]["Method"] for row in table["rows"]) == ["FT", "MPT", "PCT", "SP"]
    families = mpt_json(
        capsys, "results", "families", "--shots", "4", "--task", task, "--format", "json"
    )
    labels = [(row["labels"]["Family"], row["labels"]["Language"]) for row in families["rows"]]
    assert labels == [
        ("Germanic", "EN"),
        ("Germanic", "DE"),
        ("Germanic", "all"),
        ("Romance", "FR"),
    ]


BAD_TASKS = [
    ({"labels": ["yes"]}, "labels: expected a list of at least 2"),
    ({"verbalizer": {"same": "right"}}, "verbalizer: needs a word for each label: same, different"),
    ({"colour": "red"}, "colour: unknown key"),
    ({"source_language": "it"}, "source_language: 'it' is not one of the languages"),
    ({"pct": {"verbalizer": {"same": "yes", "different": "no"}, "templates": {"en": "{}?"}}},
     "pct.templates.en: needs one <mask> and one {} for the second text"),
    ({"data": {"local": {"dev": "d.jsonl"}}}, "data.local: needs at least dev and test"),
    ({"families": {"Germanic": ["en", "nl"]}}, "families.Germanic: 'nl' is not one of"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "message"), BAD_TASKS)
def test_a_bad_task_file_names_its_bad_key(change, message):
    import yaml

    from tests.helpers import TASK_FILE

    values = yaml.safe_load(TASK_FILE) | change
    with pytest.raises(InvalidInput, match="task file t.yaml: " + message.replace("{", r"\{")):
        parse(values, "t.yaml")


def test_a_task_file_edited_within_one_clock_step_is_read_again(tmp_path):
    from tests.helpers import TASK_FILE

    path = tmp_path / "colours.yaml"
    path.write_text(TASK_FILE)
    stat = path.stat()
    assert load_task(str(path)).name == "colours"
    path.write_text(TASK_FILE.replace("name: colours", "name: colorss"))  # the same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same stat
    assert load_task(str(path)).name == "colorss"


def test_a_task_reference_that_is_neither_is_one_line(capsys, tmp_path):
    code, _, err = mpt(capsys, "run", "--task", "mnli", "--preset", "smoke")
    assert code == 2 and "unknown --task 'mnli'; choose pawsx, xnli or a task file" in err
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    code, _, err = mpt(capsys, "run", "--task", broken, "--preset", "smoke")
    assert code == 2 and f"task file {broken}: not valid YAML" in err


def test_the_built_in_xnli_task_is_the_papers():
    xnli = load_task("xnli")
    assert xnli.labels == ("entailment", "neutral", "contradiction")
    assert dict(xnli.verbalizer) == {
        "entailment": "right",
        "neutral": "maybe",
        "contradiction": "wrong",
    }
    assert xnli.pct_templates["en"] == "question:{}? Answer:<mask>"
    assert len(xnli.languages) == 15 and sum(map(len, xnli.families.values())) == 15


def test_a_language_with_a_verbalizer_of_its_own_reads_its_own_words(tmp_path, monkeypatch):
    from mpt_engine.train import Trainer

    task = write_colour_task(tmp_path)
    task.write_text(
        task.read_text() + "verbalizer_by_language:\n  de: {same: gleich, different: anders}\n"
    )
    config = build_config(
        None, {"task": str(task), "method": "sp", "model": "tiny", "data": "local"}
    )
    trainer = Trainer(config)
    trainer.setup()
    method, tokenizer = trainer.method, trainer.tokenizer
    pieces = tokenizer.convert_ids_to_tokens(method.own_label_ids["de"].tolist())
    assert [piece.lstrip("▁Ġ") for piece in pieces] == ["gleich", "anders"]
    english = tokenizer.convert_ids_to_tokens(method.label_ids.tolist())
    assert [piece.lstrip("▁Ġ") for piece in english] == ["right", "wrong"]
    assert "fr" not in method.own_label_ids  # French reads the task's words

"""`mpt run` as a user runs it: exit codes, NDJSON, the run folder, determinism."""

import io
import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mpt_engine.languages import XNLI_LANGUAGES
from tests.helpers import mpt, mpt_json, tiny_bert


def read_json(path):
    return json.loads(Path(path).read_text())


def smoke(capsys, method, *extra):
    code, out, err = mpt(
        capsys, "run", "--method", method, "--shots", "4", "--preset", "smoke", "--json", *extra
    )
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    return lines, lines[-1]


@pytest.mark.parametrize("method", ["ft", "sp", "pct", "mpt"])
@pytest.mark.parametrize("data", ["synthetic", "local"])
def test_smoke_run_of_each_method(capsys, monkeypatch, request, method, data):
    if data == "local":
        monkeypatch.setenv("MPT_DATA_DIR", str(request.getfixturevalue("shared_data")))
    events, result = smoke(capsys, method)
    assert result["event"] == "result"
    assert (result["method"], result["shots"], result["seed"]) == (method, 4, 1)
    assert list(result["per_language"]) == list(XNLI_LANGUAGES)
    assert all(0 <= value <= 100 for value in result["per_language"].values())
    assert result["average"] == pytest.approx(sum(result["per_language"].values()) / 15)
    assert result["config"]["data"] == data
    kinds = [event["event"] for event in events]
    assert kinds[0] == "run_started" and kinds.count("dev_evaluated") == 3
    assert kinds.count("test_evaluated") == 15

    folder = Path(os.environ["MPT_HOME"], "runs", result["run_id"])
    assert read_json(folder / "result.json")["per_language"] == result["per_language"]
    record = read_json(folder / "record.json")
    assert record["libraries"]["torch"] and record["finished_at"]
    assert set(record["data_fingerprints"]) >= {"train", "dev", "test.zh"}
    assert len(record["tokenizer_fingerprint"]) == 16
    # What the run classified: its label words and one example as the model reads it.
    if method == "ft":
        assert "label_words" not in record
    else:
        words = record["label_words"]
        assert list(words) == ["entailment", "neutral", "contradiction"]
        assert len({word["id"] for word in words.values()}) == 3
        assert all(word["piece"] for word in words.values())
        assert "<mask>" in record["template_example"]
    assert ("[p]" in record["template_example"]) is (method in ("sp", "mpt"))
    logged = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    assert logged == events
    predictions = read_json(folder / "predictions.json")
    assert len(predictions["per_language"]["sw"]["predicted"]) == 200
    assert predictions["labels"] == ["entailment", "neutral", "contradiction"]


def test_same_command_gives_identical_results(capsys, monkeypatch, tmp_path, shared_data):
    monkeypatch.setenv("MPT_DATA_DIR", str(shared_data))
    per_language = []
    for home in ("first", "second"):
        monkeypatch.setenv("MPT_HOME", str(tmp_path / home))
        _, result = smoke(capsys, "mpt")
        per_language.append(result["per_language"])
    assert per_language[0] == per_language[1]
    assert len(set(per_language[0].values())) > 1  # a real spread, not a constant


def test_a_finished_run_is_shown_not_retrained(capsys):
    _, first = smoke(capsys, "sp")
    events = Path(os.environ["MPT_HOME"], "runs", first["run_id"], "events.jsonl")
    before = events.read_text()
    code, out, err = mpt(
        capsys, "run", "--method", "sp", "--shots", "4", "--preset", "smoke", "--json"
    )
    assert code == 0 and "already finished" in err
    assert json.loads(out.splitlines()[-1])["per_language"] == first["per_language"]
    assert events.read_text() == before


def test_human_output_is_a_table(capsys):
    code, out, err = mpt(capsys, "run", "--preset", "smoke", "--method", "sp", "--epochs", "1")
    assert code == 0
    assert "Avg." in out and "SW" in out
    assert "sp-k4-s1-" in err  # progress goes to stderr


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--method", "bert"], 2, "'bert' is not one of"),
        (["--shots", "0"], 2, "shots must be at least 1"),
        (["--shots", "two"], 2, "Invalid value for '--shots'"),
        (["--alpha", "1.5"], 2, "alpha must be"),
        (["--position", "middle"], 2, "'middle' is not one of"),
        (["--aux", "wiki"], 2, "unknown aux corpus 'wiki'"),
        (["--preset", "fast"], 2, "unknown preset 'fast'"),
        (["--translator", "lstm-1", "--no-translator"], 2, "contradicts"),
        (["--model", "/nonexistent/model", "--data", "synthetic"], 3, "no such folder"),
        (["--device", "tpu"], 2, "unknown device 'tpu'"),
        (["--device", "cuda:99"], 2, "not available on this machine"),
    ],
)
def test_bad_input_is_one_line_and_exit_code(capsys, args, code, fragment):
    actual, _, err = mpt(capsys, "run", *args)
    assert actual == code
    assert fragment in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not os.path.exists(os.path.join(os.environ["MPT_HOME"], "runs"))


@pytest.mark.parametrize(
    "modes", [("--status", "--cancel"), ("--dry-run", "--status"), ("--dry-run", "--cancel")]
)
def test_grid_modes_are_exclusive(capsys, modes):
    code, _, err = mpt(capsys, "grid", "--preset", "smoke", *modes)
    assert (
        code == 2 and err.strip() == f"error: {' and '.join(modes)} are different modes; give one"
    )


def test_offline_default_run_says_what_to_do(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MPT_DATA_DIR"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    completed = subprocess.run(
        [sys.executable, "-m", "mpt_tui", "run", "--shots", "4"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert completed.returncode == 3
    message = completed.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    for remedy in ("--model PATH", "MPT_DATA_DIR", "--preset smoke"):
        assert remedy in message


def test_an_unreachable_hub_is_found_without_changing_the_environment(tmp_path):
    """Unreachable (not declared offline): datasets goes to its empty cache at once and says so,
    and HF_HUB_OFFLINE is not set behind the user's back for children to inherit."""
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf"))
    code = textwrap.dedent(
        """
        import os
        from mpt_engine import hub
        from mpt_engine.data.hub import HubSource
        from mpt_engine.errors import SourceUnavailable
        assert hub.offline()
        try:
            HubSource().xnli("test", "de")
        except SourceUnavailable as error:
            print(error)
        print("HF_HUB_OFFLINE" in os.environ)
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    said, environment_changed = completed.stdout.strip().splitlines()
    assert "the hub is unreachable and it is not cached" in said, completed.stderr
    assert environment_changed == "False"


def test_a_grid_whose_source_is_offline_exits_with_the_sources_code(capsys):
    code, out, err = mpt(capsys, "grid", "--preset", "smoke", "--methods", "sp", "--data", "hub")
    assert code == 3, err
    assert "2 of 2 runs failed" in err and "MPT_DATA_DIR" in err
    statuses = [line.split()[1] for line in out.splitlines() if line.strip().startswith("sp-")]
    assert statuses == ["failed", "failed"]  # the table says so too, though no folder began


def test_help_lists_the_options(capsys):
    code, out, _ = mpt(capsys, "run", "--help")
    assert code == 0
    for option in ("--method", "--shots", "--alpha", "--translator", "--aux-size", "--json"):
        assert option in out
    flags = [line for line in out.splitlines() if "--save-checkpoint" in line or "--rerun" in line]
    assert len(flags) == 2 and not any("<bool>" in line for line in flags)  # flags take no value


@pytest.mark.parametrize(
    "command",
    [("run",), ("grid",), ("predict",), ("export",), ("results", "show"), ("results", "rm")],
)
def test_help_at_80_columns_cuts_nothing_and_names_arguments_plainly(command):
    """A choice's values are in its help, not its type column (which narrowed the help until
    an 80-column terminal cut the model default), and arguments read RUN, not {RUN}."""
    env = dict(os.environ, COLUMNS="80")
    help_text = subprocess.run(
        [sys.executable, "-m", "mpt_tui", *command, "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    ).stdout
    assert "Usage:" in help_text and "…" not in help_text
    assert "{" not in help_text.split("Usage:")[1].splitlines()[0]
    if command == ("run",):
        assert "FacebookAI/xlm-roberta-base]" in help_text
        assert "(one of linear-1, linear-2, lstm-1" in help_text  # --translator's values


@pytest.mark.parametrize("method", ["mpt", "ft"])
def test_a_bert_style_model_from_a_local_folder(capsys, tmp_path, method):
    """mBERT's layout ([CLS] A [SEP], segment ids, a `cls` MLM head) loads from a folder."""
    folder = tmp_path / "tiny-bert"
    tiny_bert(folder)
    _, result = smoke(capsys, method, "--model", str(folder), "--epochs", "1", "--test-limit", "20")
    assert result["config"]["model"] == str(folder)
    assert len(result["per_language"]) == 15


def test_version(capsys):
    code, out, _ = mpt(capsys, "--version")
    assert code == 0 and out.startswith("mpt ") and out.split()[1][0].isdigit()


def test_options_a_method_ignores_are_named_and_choices_ignore_case(capsys):
    code, out, err = mpt(
        capsys,
        "run",
        "--preset",
        "smoke",
        "--method",
        "FT",
        "--alpha",
        "0.3",
        "--epochs",
        "1",
        "--json",
    )
    assert code == 0, err
    assert "warning: ft does not use --alpha; ignored" in err
    assert json.loads(out.splitlines()[-1])["method"] == "ft"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("grid", "--preset", "smoke", "--executor", "slrum", "--dry-run"), "unknown executor"),
        (("results", "families", "--plot", "figure.gif"), "must end in .png"),
        (("results", "list", "--method", "bert"), "'bert' is not one of"),
    ],
)
def test_bad_options_fail_before_any_output(capsys, args, fragment):
    code, out, err = mpt(capsys, *args)
    assert code == 2 and fragment in err and out == ""


def test_results_show_gives_the_command_that_reruns_the_run(capsys):
    first = mpt_json(capsys, "run", "--preset", "smoke", "--method", "sp", "--lr", "3e-3", "--json")
    run_id = first[-1]["run_id"]
    rerun = mpt_json(capsys, "results", "show", run_id, "--json")["rerun"]
    assert rerun.startswith("mpt run --method sp --shots 4 --seed 1") and "--lr 0.003" in rerun
    again = mpt_json(capsys, *shlex.split(rerun)[1:], "--json")  # the stored result, at once
    assert again["run_id"] == run_id


def test_a_terminal_without_unicode_gets_ascii(capsys, monkeypatch):
    """PYTHONIOENCODING=ascii or latin-1: '—', '±' and the plot's dots degrade, no
    UnicodeEncodeError."""
    from mpt_tui.cli import main

    run_id = mpt_json(capsys, "run", "--preset", "smoke", "--epochs", "2", "--json")[-1]["run_id"]
    commands = [
        ("results", "table"),
        ("results", "show", run_id),
        ("results", "list"),
        ("grid", "--preset", "smoke", "--alpha", "0.5,1", "--dry-run"),
        ("run", "--preset", "smoke", "--epochs", "2"),  # already finished: shows the result
    ]
    for encoding in ("ascii", "latin-1"):
        for args in commands:
            streams = [io.TextIOWrapper(io.BytesIO(), encoding=encoding) for _ in range(2)]
            with monkeypatch.context() as patch:
                patch.setattr(sys, "stdout", streams[0])
                patch.setattr(sys, "stderr", streams[1])
                with pytest.raises(SystemExit) as exit_info:
                    main(list(args))
            for stream in streams:
                stream.flush()
            text, err = (stream.buffer.getvalue().decode(encoding) for stream in streams)
            assert exit_info.value.code == 0, (encoding, args, err)
            assert text.strip() and "Traceback" not in err
            if args[1] == "table":
                assert ("+/-" if encoding == "ascii" else "±") in text


def test_rerun_and_rm_move_a_run_to_the_trash_and_never_touch_one_in_training(capsys):
    args = ("run", "--preset", "smoke", "--method", "sp", "--epochs", "1", "--json")
    *_, first = mpt_json(capsys, *args)
    run_id, folder = first["run_id"], Path(os.environ["MPT_HOME"], "runs", first["run_id"])
    trash = Path(os.environ["MPT_HOME"], "trash")
    code, _, err = mpt(capsys, *args[:-1], "--rerun", "--log", "nope")  # bad input: refused
    assert code == 2 and "nope" in err and not trash.exists()  # before the run is moved
    stored = (folder / "result.json").read_text()
    (folder / "result.json").write_text(stored[:-9])  # unreadable: --rerun replaces it too
    assert mpt(capsys, *args[:-1])[0] == 2
    *_, again = mpt_json(capsys, *args, "--save-checkpoint", "--rerun")
    assert again["run_id"] == run_id and (folder / "checkpoint").is_dir()  # trained again
    (kept,) = trash.iterdir()  # the first attempt, whole
    assert (kept / "result.json").read_text() == stored[:-9]

    from mpt_engine.store import RunStore

    store = RunStore()
    with store.claim(run_id):  # another process trains it
        code, _, err = mpt(capsys, "results", "rm", run_id)
        assert code == 4 and "is being trained by" in err and folder.is_dir()
        code, _, err = mpt(capsys, "run", *args[1:-1], "--rerun")
        assert code == 4 and folder.is_dir()
    code, _, err = mpt(capsys, "results", "rm", run_id[:9])
    assert code == 0 and f"removed {run_id}" in err and not folder.exists()
    assert len(list(trash.iterdir())) == 2
    assert mpt(capsys, "results", "rm")[0] == 2  # nothing named: refused
    code, _, err = mpt(capsys, "results", "rm", "--status", "failed")  # nothing to clean up
    assert code == 0 and "nothing removed" in err


def test_the_rerun_line_of_a_local_data_run_works_as_printed(capsys, monkeypatch, shared_data):
    """`mpt results show` prints the line that reruns a run; for local data it names the data
    folder it read, so the line works from a shell without MPT_DATA_DIR set."""
    monkeypatch.setenv("MPT_DATA_DIR", str(shared_data))
    args = ("run", "--preset", "smoke", "--method", "sp", "--epochs", "1", "--json")
    *_, result = mpt_json(capsys, *args)
    monkeypatch.delenv("MPT_DATA_DIR")
    shown = mpt_json(capsys, "results", "show", result["run_id"], "--json")
    # the folder as it was given, made absolute: a symbolic link in it (../shared may be one)
    # stays as the user wrote it
    assert shown["rerun"].startswith(f"MPT_DATA_DIR={os.path.abspath(shared_data)} mpt run ")
    assignment, *words = shlex.split(shown["rerun"])
    monkeypatch.setenv(*assignment.split("=", 1))  # as the shell would for the command
    again = mpt_json(capsys, *words[1:], "--json")  # one line: the stored result
    assert again["run_id"] == result["run_id"]  # the same run: shown, not trained again


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_run_store_that_cannot_exist_is_an_error_not_an_empty_store(capsys, monkeypatch):
    monkeypatch.setenv("MPT_HOME", "/proc/nope")
    code, out, err = mpt(capsys, "results", "list")
    assert code == 2 and out == "" and "MPT_HOME /proc/nope cannot be a run store" in err


def predicting(monkeypatch, answer):
    """Every evaluation of the runs that follow predicts `answer(index)` for the index-th
    example: a model that collapsed, or one that did not, without training one."""
    from mpt_engine import train
    from mpt_engine.evaluate import Evaluation

    def evaluate(method, examples, language, batched, device, shape):
        predicted = [answer(index) for index in range(len(examples))]
        correct = sum(p == example.label for p, example in zip(predicted, examples, strict=True))
        return Evaluation(100.0 * correct / len(examples), predicted)

    monkeypatch.setattr(train, "evaluate", evaluate)


def test_a_collapsed_run_is_flagged_in_its_result_by_results_show_and_in_the_tables(
    capsys, monkeypatch
):
    """A PCT run that answers 'contradiction' to every test example: its result says so, `mpt
    results show` warns, the tables mark it; a run whose answers are spread is not flagged."""
    predicting(monkeypatch, lambda index: 2)
    _, collapsed = smoke(capsys, "pct", "--epochs", "1")
    stored = read_json(Path(os.environ["MPT_HOME"], "runs", collapsed["run_id"], "result.json"))
    assert stored["collapse"] == collapsed["collapse"] and stored["collapse"]["collapsed"] is True
    assert stored["collapse"]["per_language"]["sw"] == {"label": "contradiction", "share": 1.0}
    warning = (
        "warning: collapsed: all of the test predictions are 'contradiction' in every language"
    )
    code, out, _ = mpt(capsys, "results", "show", collapsed["run_id"])
    assert code == 0 and warning in out.splitlines()

    predicting(monkeypatch, lambda index: index % 3)
    _, spread = smoke(capsys, "pct", "--epochs", "1", "--seed", "2")
    assert spread["collapse"]["collapsed"] is False
    code, out, _ = mpt(capsys, "results", "show", spread["run_id"])
    assert code == 0 and "warning:" not in out
    code, out, _ = mpt(capsys, "run", "--method", "pct", "--shots", "4", "--preset", "smoke",
                       "--epochs", "1")  # fmt: skip
    assert code == 0 and warning in out.splitlines()  # finished: its result, and the warning

    code, out, _ = mpt(capsys, "results", "table")
    assert code == 0 and "†" in out and "1 of 2 runs collapsed" in out
    document = mpt_json(capsys, "results", "list", "--format", "json")
    flagged = {row["labels"]["Run"]: row["collapsed"] for row in document["rows"]}
    assert flagged == {collapsed["run_id"]: 1, spread["run_id"]: 0}
    code, out, _ = mpt(capsys, "results", "list")
    assert code == 0 and "a collapsed run:" in out

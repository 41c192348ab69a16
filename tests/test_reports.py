"""The paper's tables from a store of runs with known accuracies, checked against statistics
computed here independently (numpy, scipy.stats)."""

import csv
import dataclasses
import io
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from mpt_engine.config import RunConfig
from mpt_engine.errors import InvalidInput
from mpt_engine.grouping import run_settings
from mpt_engine.languages import XNLI_LANGUAGES
from mpt_engine.paper import paper_comparison, paper_results, paper_table2_comparison
from mpt_engine.reports import (
    ablation,
    compare,
    families,
    runs_table,
    table1,
    table2,
)
from mpt_engine.results import (
    Paces,
    StoredRun,
    load_runs,
    parse_where,
    select,
    work_units,
)
from mpt_engine.stats import TTest, t_test
from mpt_engine.store import RunStore
from mpt_engine.tables import export


def add_run(
    store: RunStore, accuracies: dict[str, float], collapse: object = None, **values
) -> str:
    """A finished run folder as the runner writes it, with the given accuracies (in the paper's
    setup unless `values` change it) and `collapse` field (none: a result from before mpt
    looked for collapse)."""
    config = RunConfig(**values).resolved()
    folder = store.folder(config.run_id)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(config.to_json())
    (folder / "record.json").write_text(
        json.dumps({"started_at": f"2026-01-01T00:00:{len(list(store.root.iterdir())):02d}"})
    )
    result = {
        "run_id": config.run_id,
        "method": config.method.value,
        "shots": config.shots,
        "seed": config.seed,
        "per_language": accuracies,
        "average": sum(accuracies.values()) / len(accuracies),
    }
    if collapse is not None:
        result["collapse"] = collapse
    (folder / "result.json").write_text(json.dumps(result))
    return config.run_id


def accuracies(rng: random.Random, base: float) -> dict[str, float]:
    return {lang: round(base + rng.uniform(-3, 3), 2) for lang in XNLI_LANGUAGES}


@pytest.fixture
def store(tmp_path) -> RunStore:
    store = RunStore(tmp_path / "runs")
    rng = random.Random(0)
    for seed in (1, 2, 3):
        for method, base in (("sp", 40), ("pct", 42), ("mpt", 45)):
            add_run(store, accuracies(rng, base), method=method, shots=4, seed=seed)
        add_run(store, accuracies(rng, 50), method="mpt", shots=8, seed=seed)
        add_run(store, accuracies(rng, 41), method="mpt", shots=4, seed=seed, alpha=1.0)
        add_run(store, accuracies(rng, 43), method="mpt", shots=4, seed=seed, aux="xnli-dev")
        add_run(store, accuracies(rng, 44), method="mpt", shots=4, seed=seed, translator="none")
        add_run(store, accuracies(rng, 42), method="mpt", shots=4, seed=seed, translator="separate")
        add_run(store, accuracies(rng, 44.5), method="mpt", shots=4, seed=seed, translator="lstm-1")
    return store


def runs(store, where=""):
    found, warnings = load_runs(store)
    assert warnings == []
    return select(found, parse_where(where))


def values_of(store, where, key="average"):
    return [
        run.result["per_language"][key] if key != "average" else run.result["average"]
        for run in runs(store, where)
    ]


def test_table1_mean_and_std_per_cell(store):
    table = table1(
        runs(store, "method=sp") + runs(store, "method=mpt,alpha=0.5,translator=linear-2,aux=pawsx")
    )
    rows = {tuple(row.labels[:2]): row for row in table.rows}
    sp = rows[("4", "SP")]
    expected = values_of(store, "method=sp", "de")
    cell = sp.cells[table.value_columns.index("DE")]
    assert cell.value == pytest.approx(np.mean(expected))
    assert cell.std == pytest.approx(np.std(expected, ddof=1))
    assert sp.labels[-1] == "3"  # seeds
    average = sp.cells[table.value_columns.index("Avg.")]
    assert average.value == pytest.approx(np.mean(values_of(store, "method=sp")))


def test_table1_marks_the_best_per_column_within_each_shot_setting(store):
    table = table1(
        runs(store, "method=sp")
        + runs(store, "method=pct")
        + runs(store, "method=mpt,alpha=0.5,translator=linear-2,aux=pawsx")
    )
    index = table.value_columns.index("Avg.")
    four = [row for row in table.rows if row.labels[0] == "4"]
    best = [row for row in four if row.cells[index].best]
    assert [row.labels[1] for row in best] == ["MPT"]
    eight = [row for row in table.rows if row.labels[0] == "8"]
    assert len(eight) == 1 and not eight[0].cells[index].best  # nothing to compare against


def test_table1_labels_ablation_rows_by_their_setting(store):
    table = table1(runs(store, "method=mpt,shots=4"))
    assert "Setting" in table.label_columns
    settings = {row.labels[2] for row in table.rows}
    assert {"alpha=1.0", "aux=xnli-dev", "translator=none"} <= settings


def test_a_data_digest_per_method_is_no_setting_but_two_in_one_method_are(tmp_path):
    """MPT reads its auxiliary corpus, so its runs' data digest differs from SP's: that is the
    method, not a setting. Two MPT groups on different data are told apart by it."""
    store, rng = RunStore(tmp_path / "runs"), random.Random(1)
    for method, digest in (("sp", "aa"), ("mpt", "bb")):
        add_run(store, accuracies(rng, 40), method=method, shots=4, data_digest=digest)
    assert "Setting" not in table1(load_runs(store)[0]).label_columns
    add_run(store, accuracies(rng, 40), method="mpt", shots=4, data_digest="cc")
    table = table1(load_runs(store)[0])
    assert "Setting" in table.label_columns
    assert {row.labels[2] for row in table.rows if row.labels[1] == "MPT"} == {
        "data_digest=bb",
        "data_digest=cc",
    }


def test_a_data_digest_that_follows_the_shots_is_no_setting_and_the_best_is_marked(tmp_path):
    """Each k reads its own k-shot file (and MPT its corpus), so local-data runs have a digest
    per method and shots: no setting, and the bold still goes to the best of each k."""
    store, rng = RunStore(tmp_path / "runs"), random.Random(2)
    for shots in (1, 2):
        for method, base in (("sp", 40), ("mpt", 45)):
            for seed in (1, 2):
                digest = f"{ord(method[0]):x}{shots}"
                add_run(store, accuracies(rng, base), method=method, shots=shots, seed=seed,
                        data_digest=digest)  # fmt: skip
    table = table1(load_runs(store)[0])
    assert "Setting" not in table.label_columns and len(table.rows) == 4
    best = [[row.labels[1] for row in table.rows if row.cells[-1].best and row.labels[0] == k]
            for k in ("1", "2")]  # fmt: skip
    assert best == [["MPT"], ["MPT"]]
    assert set(run_settings(load_runs(store)[0])) == {"—"}


def test_compare_p_values_are_scipys(store):
    first, second = runs(store, "method=sp"), runs(store, "method=pct")
    table = compare(first, second, ("sp", "pct"))
    p_row = table.rows[-1]
    assert p_row.labels[0] == "p-value"
    a, b = values_of(store, "method=sp"), values_of(store, "method=pct")
    expected = stats.ttest_ind(a, b, equal_var=False).pvalue
    assert p_row.cells[-1].value == pytest.approx(expected)
    difference = table.rows[2].cells[table.value_columns.index("FR")].value
    assert difference == pytest.approx(
        np.mean(values_of(store, "method=pct", "fr")) - np.mean(values_of(store, "method=sp", "fr"))
    )
    paired = compare(first, second, ("sp", "pct"), TTest.PAIRED)
    assert paired.rows[-1].cells[-1].value == pytest.approx(stats.ttest_rel(a, b).pvalue)


def test_table2_rows_and_p_values(store):
    table = table2(runs(store, "shots=4"))
    names = [row.labels[0] for row in table.rows]
    assert names == [
        "Original MPT",
        "w/o consistency loss",
        "w/o external data",
        "w/o prompt translator",
        "w/o translator, own p^T",
        "w/o MPT framework",
    ]
    p_index = table.value_columns.index("p-value")
    assert table.rows[0].cells[p_index].value is None
    original = values_of(store, "method=mpt,shots=4,alpha=0.5,translator=linear-2,aux=pawsx")
    no_kl = values_of(store, "method=mpt,shots=4,alpha=1.0")
    assert table.rows[1].cells[p_index].value == pytest.approx(
        stats.ttest_ind(original, no_kl, equal_var=False).pvalue
    )
    sp = values_of(store, "method=sp,shots=4")
    assert table.rows[5].cells[-2].value == pytest.approx(np.mean(sp))


def test_table2_columns_test_compares_the_rows_column_means(store):
    table = table2(runs(store, "shots=4"), TTest.COLUMNS)
    means = [[cell.value for cell in row.cells[:-1]] for row in table.rows]
    p_index = table.value_columns.index("p-value")
    assert table.rows[1].cells[p_index].value == pytest.approx(
        stats.ttest_ind(means[0], means[1]).pvalue
    )
    assert "Student's t-test" in " ".join(table.notes)


def test_the_columns_test_reproduces_the_papers_table2_p_values():
    published = paper_results()["table2_64_shots"]
    original = published["Original MPT"]["values"]
    ablations = [row for row in published.values() if row["p_value"] is not None]
    assert len(ablations) == 4
    for row in ablations:  # the published values are rounded to 0.1, the p-values to 2 digits
        p_value = t_test(original, row["values"], TTest.COLUMNS)
        assert p_value == pytest.approx(row["p_value"], rel=0.1)


def test_a_paired_test_of_a_constant_difference_is_undefined():
    assert t_test([40.0, 41.0, 45.0], [41.0, 42.0, 46.0], TTest.PAIRED) is None
    assert t_test([40.0, 41.0, 45.0], [41.0, 42.5, 46.0], TTest.PAIRED) > 0


def test_compare_refuses_the_columns_test(store):
    with pytest.raises(InvalidInput, match="welch or paired"):
        compare(runs(store, "method=sp"), runs(store, "method=pct"), test=TTest.COLUMNS)


def test_table2_needs_one_base_configuration(store):
    add_run(store, accuracies(random.Random(1), 40), method="mpt", shots=4, seed=1, lr=1e-3)
    with pytest.raises(InvalidInput, match="MPT configurations match"):
        table2(runs(store, "shots=4"))
    assert table2(runs(store, "shots=4,lr=4e-5")).rows[0].labels[1] == "3"


def test_families_relative_gain(store):
    table = families(runs(store, "shots=4"))
    rows = {(row.labels[0], row.labels[1]): row for row in table.rows}
    sp_zh = np.mean(values_of(store, "method=sp,shots=4", "zh"))
    mpt_zh = np.mean(
        values_of(store, "method=mpt,shots=4,alpha=0.5,translator=linear-2,aux=pawsx", "zh")
    )
    gain = rows[("Chinese", "ZH")].cells[2].value
    assert gain == pytest.approx(100 * (mpt_zh - sp_zh) / sp_zh)
    assert len({row.labels[0] for row in table.rows}) == 11
    germanic = rows[("Germanic", "all")].cells
    sp_family = np.mean(
        [np.mean(values_of(store, "method=sp,shots=4", lang)) for lang in ("en", "de")]
    )
    assert germanic[0].value == pytest.approx(sp_family)


def test_ablation_orders_values_and_checks_the_rest_is_fixed(store):
    table = ablation(runs(store, "shots=4,alpha=0.5,aux=pawsx"), "translator")
    assert [row.labels[0] for row in table.rows] == ["linear-2", "lstm-1", "none", "separate"]
    with pytest.raises(InvalidInput, match="unknown ablation"):
        ablation(runs(store), "depth")


def test_paper_comparison_differences(store):
    table = paper_comparison(runs(store, "method=sp"))
    ours, paper, delta = table.rows[:3]
    assert paper.labels[-1] == "paper"
    published = json.loads(Path("assets/paper_results.json").read_text())["table1"]["sp"]["4"]
    assert [cell.value for cell in paper.cells] == published
    assert delta.cells[0].value == pytest.approx(ours.cells[0].value - published[0])


def test_exports_carry_the_same_numbers(store):
    table = table1(runs(store, "method=sp"))
    parsed = list(csv.DictReader(io.StringIO(export(table, "csv"))))
    assert float(parsed[0]["EN"]) == pytest.approx(table.rows[0].cells[4].value)
    assert float(parsed[0]["EN std"]) == pytest.approx(table.rows[0].cells[4].std)
    document = json.loads(export(table, "json"))
    assert document["rows"][0]["values"]["Avg."]["value"] == pytest.approx(
        table.rows[0].cells[-1].value
    )
    assert document["rows"][0]["labels"]["Seeds"] == "3"
    markdown = export(table, "md")
    assert "| Shots | Method | Seeds | AR |" in markdown and " ± " in markdown
    latex = export(table, "latex")
    assert r"\begin{tabular}" in latex and r"$\pm$" in latex and r"\toprule" in latex


def test_best_cells_are_bold_in_markdown_and_latex(store):
    table = table1(runs(store, "method=sp") + runs(store, "method=pct"))
    best = [cell for row in table.rows for cell in row.cells if cell.best]
    assert len(best) == len(table.value_columns)  # one best per column among two rows
    assert export(table, "md").count("**") == 2 * len(best) + 2  # and the bold title
    assert export(table, "latex").count(r"\textbf{") == len(best)


def test_foreign_and_corrupt_folders_are_skipped_with_a_warning(store):
    (store.root / "notes").mkdir()
    broken = store.root / "mpt-k4-s9-0123456789"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    found, warnings = load_runs(store)
    assert len(found) == 27
    assert len(warnings) == 2 and any("mpt-k4-s9-0123456789" in w for w in warnings)


def test_where_selects_by_typed_values(store):
    assert len(runs(store, "method=mpt,shots=4,seed=1-2,alpha=1")) == 2
    # fields a method does not use match any value: SP and PCT runs stay beside MPT's
    assert {run.config["method"] for run in runs(store, "shots=4,alpha=0.5")} == {
        "sp",
        "pct",
        "mpt",
    }
    found, _ = load_runs(store)  # a selection that deletes (mpt results rm) keeps them out
    strict = select(found, parse_where("shots=4,alpha=0.5"), strict=True)
    assert {run.config["method"] for run in strict} == {"mpt"} and len(strict) == 15
    assert len(runs(store, "status=finished")) == 27
    with pytest.raises(InvalidInput, match="expected field=value"):
        parse_where("method")
    with pytest.raises(InvalidInput, match="unknown option colour"):
        runs(store, "colour=red")


def test_finished_runs_are_kept_parsed_once_their_files_settle(tmp_path, monkeypatch):
    """The parse cache of finished runs (MPT_CACHE/runs) keys each by its files' stat: a run
    whose files changed within one clock step of being read is not kept, so a hand edit at the
    same size and stat right after that read is still seen."""
    import mpt_engine.results as results

    store = RunStore(tmp_path / "runs")
    run_id = add_run(store, dict.fromkeys(XNLI_LANGUAGES, 40.0), method="sp")
    result = store.folder(run_id) / "result.json"
    stat = result.stat()
    assert load_runs(store)[0][0].average == 40.0
    result.write_text(result.read_text().replace("40.0", "41.0"))  # by hand, the same size
    os.utime(result, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert load_runs(store)[0][0].average == 41.0
    then = stat.st_mtime_ns - 60 * 10**9  # settled: kept, and never read from its folder again
    for path in (store.folder(run_id), *store.folder(run_id).iterdir()):
        os.utime(path, ns=(then, then))
    assert load_runs(store)[0][0].average == 41.0
    monkeypatch.setattr(results, "read_or_skip", lambda *_: pytest.fail("read again"))
    assert load_runs(store)[0][0].average == 41.0


def test_time_estimates_scale_with_the_work_of_a_run():
    done = RunConfig(model="tiny", method="mpt", epochs=2, test_limit=100).resolved()
    result = {"per_language": {}, "average": 40.0, "seconds": 10.0}
    finished = StoredRun(done.run_id, Path("."), done.to_dict(), "finished", result, {})
    assert Paces([finished]).estimate([done]) == pytest.approx(10.0)
    longer = dataclasses.replace(done, epochs=20)
    more = Paces([finished]).estimate([longer])
    assert more / 10.0 == pytest.approx(work_units(longer.to_dict()) / work_units(done.to_dict()))
    assert more > 5 * 10.0  # training dominates: ten times the epochs, most of ten times the time
    assert Paces([finished]).estimate([dataclasses.replace(done, model="other")]) is None
    without_kl = dataclasses.replace(done, alpha=1.0).resolved().to_dict()
    assert 0 < work_units(without_kl) < work_units(done.to_dict())  # same steps, no aux views


def test_table2_beside_the_papers(store):
    table = paper_table2_comparison(runs(store, "shots=4"))
    published = paper_results()["table2_64_shots"]["w/o consistency loss"]
    rows = {(row.labels[0], row.labels[1].split()[0]): row for row in table.rows}
    ours, paper = rows[("w/o consistency loss", "ours")], rows[("w/o consistency loss", "paper")]
    assert [cell.value for cell in paper.cells] == [*published["values"], published["p_value"]]
    delta = rows[("w/o consistency loss", "Δ")]
    assert delta.cells[0].value == pytest.approx(ours.cells[0].value - published["values"][0])
    assert ("w/o translator, own p^T", "paper") not in rows  # not in the paper


def test_runs_that_differ_beyond_the_seed_are_never_averaged_together(tmp_path):
    """A smoke run (synthetic data, tiny model, 1 epoch) beside real runs of the same method,
    shots and seed: no aggregate pools them, the bold goes among comparable rows only, and the
    paper comparison leaves the smoke run out and says so."""
    store = RunStore(tmp_path / "runs")
    rng = random.Random(1)
    for seed in (1, 2):
        add_run(store, accuracies(rng, 40), method="sp", shots=4, seed=seed)
        add_run(store, accuracies(rng, 45), method="mpt", shots=4, seed=seed)
    smoke = dict(model="tiny", data="synthetic", epochs=1, test_limit=10)
    add_run(store, accuracies(rng, 90), method="sp", shots=4, seed=1, **smoke)
    every = runs(store)

    with pytest.raises(InvalidInput, match=r"selection A mixes 2 configurations .*data=synthetic"):
        compare(select(every, parse_where("method=sp")), select(every, parse_where("method=mpt")))
    table = table1(every)
    rows = {(row.labels[1], row.labels[2]): row for row in table.rows}
    real_mpt, real_sp = rows[("MPT", "—")], rows[("SP", "—")]
    assert real_sp.labels[3] == "2"  # the two real seeds, without the smoke run
    assert all(cell.best for cell in real_mpt.cells)  # 45 beats 40; the smoke 90 is not its rival
    (smoke_row,) = [row for row in table.rows if "data=synthetic" in row.labels[2]]
    assert smoke_row.labels[3] == "1" and not any(cell.best for cell in smoke_row.cells)

    listed = runs_table(every)
    assert listed.label_columns[4] == "Setting"
    shown = {row.labels[4] for row in listed.rows}
    assert shown == {"—", "data=synthetic epochs=1 model=tiny test_limit=10"}

    compared = paper_comparison(every)
    assert any("1 run left out: not in the paper's setup" in note for note in compared.notes)
    assert {row.labels[-1] for row in compared.rows} >= {"ours (2 seeds)", "paper"}
    with pytest.raises(InvalidInput, match="none of the 1 finished run is in the paper's setup"):
        paper_comparison(select(every, parse_where("model=tiny")))


def test_means_round_half_up_as_people_do():
    from mpt_engine.tables import Cell, rounded

    assert [rounded(v) for v in (36.25, 31.75, 33.333, -1.25)] == ["36.3", "31.8", "33.3", "-1.3"]
    assert Cell(36.25, 0.05).text(".1f") == "36.3 ± 0.1"
    assert Cell(1.234e-5, fmt=".1e").text(".1f") == "1.2e-05"


def test_a_long_report_prints_as_plain_aligned_lines(capsys):
    """The runs list of a large store: plain text in a fraction of rich's layout time."""
    from mpt_engine.tables import Cell, ResultTable, Row
    from mpt_tui.commands.common import show_table
    from mpt_tui.render import LONG_TABLE

    table = ResultTable(title="many", label_columns=["Run"], value_columns=["Avg."], notes=["n"])
    table.rows = [Row([f"run-{i}"], [Cell(40 + i / 1000)]) for i in range(LONG_TABLE + 1)]
    show_table(table, "text")
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == ["many", "Run      Avg.", "-------  ----"]
    assert lines[3] == "run-0    40.0" and lines[-2] == "run-500  40.5" and lines[-1] == "n"


LABELS = ("entailment", "neutral", "contradiction")


@pytest.mark.parametrize(
    ("predicted", "collapsed", "labels"),
    [
        ({"en": [2] * 10, "de": [2] * 20}, True, ["contradiction"]),
        # exactly 90% in each (63 / 70: 0.9 * 70 is 63.00000000000001 in floating point), and
        # the languages need not agree on the class
        ({"en": [1] * 63 + [0] * 7, "de": [0] * 9 + [2]}, True, ["neutral", "entailment"]),
        ({"en": [1] * 9 + [0], "de": [1] * 89 + [0] * 11}, False, ["neutral"]),  # 89% in one
        ({"en": [-1] * 19 + [0], "de": [-1] * 10}, True, ["none"]),  # PCT: no label word
        ({"en": [-1] * 5 + [0] * 5, "de": [2] * 10}, False, ["none", "contradiction"]),
        ({"en": [0, 1, 2] * 4, "de": [], "fr": [1] * 10}, False, ["entailment", "neutral"]),
    ],
)
def test_a_run_collapsed_when_one_class_takes_90_percent_in_every_language(
    predicted, collapsed, labels
):
    from mpt_engine.collapse import detect

    found = detect(predicted, LABELS)
    assert found.collapsed is collapsed and found.labels() == labels
    assert set(found.per_language) == {lang for lang, values in predicted.items() if values}
    assert detect({"en": []}, LABELS) is None  # nothing tested: nothing known


def test_the_collapse_warning_says_the_smallest_share_never_rounded_up():
    from mpt_engine.collapse import detect

    everything = detect({"en": [2] * 10, "de": [2] * 5}, LABELS)
    assert everything.warning() == (
        "collapsed: all of the test predictions are 'contradiction' in every language"
    )
    nearly = detect({"en": [2] * 999 + [0], "de": [1] * 19 + [0]}, LABELS)
    assert nearly.share == 0.95 and nearly.warning() == (
        "collapsed: at least 95% of the test predictions are one class ('contradiction', "
        "'neutral') in every language"
    )
    assert "at least 99%" in detect({"en": [2] * 9999 + [0]}, LABELS).warning()


@pytest.mark.parametrize(
    "stored",
    [
        "yes",
        {"collapsed": "true", "per_language": {"en": {"label": "neutral", "share": 1.0}}},
        {"collapsed": True},
        {"collapsed": True, "per_language": {}},
        {"collapsed": True, "per_language": ["en"]},
        {"collapsed": True, "per_language": {"en": {"label": 2, "share": 1.0}}},
        {"collapsed": True, "per_language": {"en": {"label": "neutral", "share": 1.5}}},
        {"collapsed": True, "per_language": {"en": {"label": "neutral", "share": True}}},
        {"collapsed": True, "per_language": {"en": {"label": "neutral"}}},
    ],
)
def test_a_malformed_collapse_field_is_not_known_and_breaks_nothing(tmp_path, stored):
    store = RunStore(tmp_path / "runs")
    add_run(store, dict.fromkeys(XNLI_LANGUAGES, 40.0), collapse=stored, method="sp")
    (run,) = runs(store)  # no warning: the run itself is fine
    assert run.collapse is None and not run.collapsed
    assert "†" not in export(table1([run]), "md")


def test_a_recorded_collapse_reads_back_as_written(tmp_path):
    from mpt_engine.collapse import detect

    found = detect({lang: [2] * 9 + [1] for lang in XNLI_LANGUAGES}, LABELS)
    store = RunStore(tmp_path / "runs")
    add_run(store, dict.fromkeys(XNLI_LANGUAGES, 33.3), collapse=found.to_dict(), method="pct")
    (run,) = runs(store)
    assert run.collapse == found and run.collapsed
    assert run.result["collapse"]["threshold"] == 0.9
    assert run.result["collapse"]["per_language"]["sw"] == {"label": "contradiction", "share": 0.9}


def collapse_field(collapsed: bool) -> dict:
    """The collapse field of a run that answers 'contradiction' everywhere, or of one whose
    answers are spread evenly over the classes."""
    from mpt_engine.collapse import detect

    answers = [2] * 12 if collapsed else [0, 1, 2] * 4
    return detect(dict.fromkeys(XNLI_LANGUAGES, answers), LABELS).to_dict()


def test_tables_mark_collapsed_runs_and_say_how_many_of_a_cell_collapsed(tmp_path):
    store, rng = RunStore(tmp_path / "runs"), random.Random(3)
    for seed in (1, 2, 3):
        spread = collapse_field(False)
        add_run(store, accuracies(rng, 40), collapse=spread, method="sp", shots=4, seed=seed)
        pct = collapse_field(seed < 3)  # two of PCT's three seeds collapsed
        add_run(store, accuracies(rng, 33), collapse=pct, method="pct", shots=4, seed=seed)
    table = table1(runs(store))
    rows = {row.labels[1]: row for row in table.rows}
    sp, pct = rows["SP"], rows["PCT"]
    assert (sp.runs, sp.collapsed, pct.runs, pct.collapsed) == (3, 0, 3, 2)
    assert [cell.collapsed for cell in pct.cells] == [False] * 15 + [True]  # its average
    assert not any(cell.collapsed for cell in sp.cells)
    note = (
        "† Shots 4, Method PCT, Seeds 3: 2 of 3 runs collapsed (one class took ≥ 90% of the "
        "test predictions in every language)"
    )
    assert table.footnotes() == [*table.notes, note]

    markdown = export(table, "md")
    (pct_line,) = [line for line in markdown.splitlines() if "| PCT |" in line]
    assert pct_line.endswith("† |")  # its average (not the best: SP's is higher)
    assert markdown.count("†") == 2 and f"_{note}_" in markdown
    latex = export(table, "latex")
    assert latex.count(r"$^\dagger$") == 2 and r"$\geq$ 90\% of the test" in latex
    document = json.loads(export(table, "json"))
    counted = [(row["labels"]["Method"], row["runs"], row["collapsed"]) for row in document["rows"]]
    assert sorted(counted) == [("PCT", 3, 2), ("SP", 3, 0)] and note in document["notes"]
    parsed = list(csv.DictReader(io.StringIO(export(table, "csv"))))
    assert {row["Method"]: row["collapsed runs"] for row in parsed} == {"SP": "0", "PCT": "2"}

    compared = compare(runs(store, "method=sp"), runs(store, "method=pct"), ("sp", "pct"))
    assert [row.collapsed for row in compared.rows] == [0, 2, 0, 0]
    assert compared.rows[1].cells[-1].collapsed and not compared.rows[2].cells[-1].collapsed
    beside = paper_comparison(runs(store))
    ours, paper, delta = [row for row in beside.rows if row.labels[1] == "PCT"]
    assert ours.labels[-1] == "ours (3 seeds)" and ours.collapsed == 2 and ours.cells[-1].collapsed
    assert paper.collapsed == delta.collapsed == 0 and not delta.cells[-1].collapsed

    listed = runs_table(runs(store))  # one run a row: one line says what the mark means
    assert [row.collapsed for row in listed.rows] == [0, 1, 0, 1, 0, 0]
    assert [row.cells[0].collapsed for row in listed.rows] == [False, True, False, True] + [
        False
    ] * 2
    assert listed.footnotes() == [
        "† a collapsed run: one class took ≥ 90% of the test predictions in every language"
    ]


def test_tables_of_runs_not_known_to_have_collapsed_carry_no_mark(store):
    """The fixture's results were written before mpt looked for collapse."""
    table = table1(runs(store))
    assert all(row.collapsed == 0 and row.runs == int(row.labels[-1]) for row in table.rows)
    for fmt in ("md", "latex", "csv", "json"):
        assert "†" not in export(table, fmt) and "dagger" not in export(table, fmt)
    assert "collapsed runs" not in export(table, "csv").splitlines()[0]
    assert table.footnotes() == table.notes


def test_the_families_table_says_how_many_of_its_sp_and_mpt_runs_collapsed(tmp_path):
    store, rng = RunStore(tmp_path / "runs"), random.Random(4)
    for seed in (1, 2):
        add_run(store, accuracies(rng, 40), collapse_field(seed == 1), method="sp", seed=seed)
        add_run(store, accuracies(rng, 45), collapse_field(False), method="mpt", seed=seed)
    assert families(runs(store)).notes[1:] == [
        "1 of the 2 SP runs collapsed (one class took ≥ 90% of the test predictions in every "
        "language)"
    ]

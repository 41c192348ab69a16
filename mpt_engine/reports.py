"""The paper's tables from whatever finished runs the store holds: Table I, Table II, any
comparison with t-tests, Figure 3's family gains, the ablations of Figures 4-5, and the runs
list (our numbers beside the published ones: paper.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from mpt_engine.collapse import MEANING
from mpt_engine.config import DEFAULT_TASK, Method, RunConfig
from mpt_engine.errors import InvalidInput
from mpt_engine.grouping import (
    VARIANT_IGNORE,
    config_key,
    distinguishing_settings,
    group_runs,
    run_settings,
)
from mpt_engine.presets import ABLATIONS, TABLE2_ROWS
from mpt_engine.record import minute
from mpt_engine.results import StoredRun
from mpt_engine.run_state import RunStatus
from mpt_engine.stats import TTest, relative_gain, summarize, t_test
from mpt_engine.tables import Cell, ResultTable, Row, count
from mpt_engine.tasks import Task, load_task, task_of

AVERAGE = "Avg."
METHOD_ORDER = [method.value for method in Method]
P_FORMAT = ".1e"
STD_NOTE = "mean ± sample standard deviation over seeds; Seeds = finished runs averaged"
TEST_NAMES = {
    TTest.WELCH: "Welch's t-test over seeds",
    TTest.PAIRED: "paired t-test on matched seeds",
    TTest.COLUMNS: "Student's t-test across the 16 column means (as the paper's Table II)",
}

# The settings the paper's ablations vary, at their values in the original MPT.
PAPER_MPT_SETTINGS = ("translator", "position", "prompt_length", "alpha")


def columns(task: Task) -> list[str]:
    """A task's value columns: its languages, then the average."""
    return [*(language.upper() for language in task.languages), AVERAGE]


def single_task(runs: Sequence[StoredRun]) -> Task:
    """The one task of the runs a table compares; InvalidInput when they mix tasks."""
    names = sorted({run.config.get("task") or DEFAULT_TASK for run in runs})
    if len(names) > 1:
        raise InvalidInput(
            f"the runs are of several tasks ({', '.join(names)}); choose one with {{task}}",
            field="task",
        )
    return task_of({"task": names[0]}) if names else load_task()


def accuracy_values(runs: Sequence[StoredRun]) -> list[list[float]]:
    """For each column (the task's languages, then the average) the values of the runs."""
    languages = single_task(runs).languages
    values = [[run.result["per_language"][lang] for run in runs] for lang in languages]
    return [*values, [run.result["average"] for run in runs]]


def accuracy_cells(runs: Sequence[StoredRun]) -> list[Cell]:
    return [Cell(s.mean, s.std) for s in map(summarize, accuracy_values(runs))]


def group_row(labels: list[str], runs: Sequence[StoredRun]) -> Row:
    """A group of runs as a row: their accuracy cells, the average marked when some of the
    runs collapsed (collapse.py; the table's footnote says how many)."""
    cells = accuracy_cells(runs)
    collapsed = sum(run.collapsed for run in runs)
    cells[-1] = replace(cells[-1], collapsed=collapsed > 0)
    return Row(labels, cells, runs=len(runs), collapsed=collapsed)


def table1(runs: Sequence[StoredRun]) -> ResultTable:
    """Table I: rows method x shots, mean ± std over seeds; the best of each column is marked,
    as the paper's bold, among the rows of one shot setting that are comparable (no other
    setting departs: a smoke run never takes the bold from real runs)."""
    groups = list(group_runs(runs).values())
    if not groups:
        raise InvalidInput("no finished runs to tabulate")
    task = single_task([group[0] for group in groups])
    settings = distinguishing_settings(groups, ("method", "shots"))
    with_setting = any(setting != "—" for setting in settings)
    table = ResultTable(
        title=f"Accuracy (%) on {task.name.upper()}",
        label_columns=["Shots", "Method", *(["Setting"] if with_setting else []), "Seeds"],
        value_columns=columns(task),
        notes=[STD_NOTE],
    )
    blocks: dict[tuple[int, str], list[Row]] = {}
    for group, setting in sorted(zip(groups, settings, strict=True), key=_table1_order):
        config = group[0].config
        labels = [
            str(config["shots"]),
            config["method"].upper(),
            *([setting] if with_setting else []),
        ]
        row = group_row([*labels, str(len(group))], group)
        table.rows.append(row)
        blocks.setdefault((config["shots"], setting), []).append(row)
    table.mark_best(list(blocks.values()), columns(task))
    _note_unfinished(table, runs)
    return table


def _table1_order(item: tuple[list[StoredRun], str]) -> tuple:
    group, setting = item
    return group[0].config["shots"], METHOD_ORDER.index(group[0].config["method"]), setting


def compare(
    first: Sequence[StoredRun],
    second: Sequence[StoredRun],
    names: tuple[str, str] = ("A", "B"),
    test: TTest = TTest.WELCH,
) -> ResultTable:
    """Two selections, their difference, and a two-tailed t-test over seeds per column. Each
    selection must be one configuration apart from the seed: runs that differ otherwise (other
    data, model, epochs) are never averaged together."""
    if test is TTest.COLUMNS:
        raise InvalidInput("compare tests each column over seeds: use {test} welch or paired")
    first, second = _finished(first, names[0]), _finished(second, names[1])
    for name, selection in zip(names, (first, second), strict=True):
        _one_configuration(selection, name)
    task = single_task([*first, *second])
    if test is TTest.PAIRED:
        first, second = _match_seeds(first, second)
    table = ResultTable(
        title=f"{names[1]} vs {names[0]}: accuracy (%), two-tailed {TEST_NAMES[test]}",
        label_columns=["Selection", "Seeds"],
        value_columns=columns(task),
        notes=[STD_NOTE],
    )
    table.rows.append(group_row([names[0], str(len(first))], first))
    table.rows.append(group_row([names[1], str(len(second))], second))
    pairs = list(zip(accuracy_values(first), accuracy_values(second), strict=True))
    differences = [summarize(b).mean - summarize(a).mean for a, b in pairs]
    table.rows.append(Row([f"{names[1]} − {names[0]}", ""], [Cell(d) for d in differences]))
    table.rows.append(
        Row(["p-value", ""], [Cell(t_test(a, b, test), fmt=P_FORMAT) for a, b in pairs])
    )
    return table


def table2(runs: Sequence[StoredRun], test: TTest = TTest.WELCH) -> ResultTable:
    """Table II: the original MPT and its four ablations, with the p-value of each row against
    the original's: a t-test of the average over seeds, or (COLUMNS) the paper's test across the
    rows' 16 column means."""
    base = base_mpt_group(runs, "mpt grid --preset table2")
    value_columns = columns(single_task(runs))
    groups = group_runs(runs, VARIANT_IGNORE)
    table = ResultTable(
        title=f"Intrinsic analysis of MPT at {count(base[0].config['shots'], 'shot')}: "
        "accuracy (%)",
        label_columns=["Model", "Seeds"],
        value_columns=[*value_columns, "p-value"],
        notes=[STD_NOTE, f"p-value vs Original MPT: two-tailed {TEST_NAMES[test]}"],
    )
    for name, change in TABLE2_ROWS:
        group = groups.get(config_key(_variant(base[0].config, change), VARIANT_IGNORE), [])
        if not group:
            table.rows.append(Row([name, "0"], [Cell(None)] * (len(value_columns) + 1)))
            continue
        row = group_row([name, str(len(group))], group)
        p_value = None if not change else _table2_p_value(base, group, test)
        row.cells.append(Cell(p_value, fmt=P_FORMAT))
        table.rows.append(row)
    table.mark_best([table.rows], value_columns)
    missing = [row.labels[0] for row in table.rows if row.labels[1] == "0"]
    if missing:
        table.notes.append(
            f"no finished runs yet for: {', '.join(missing)} (mpt grid --preset table2)"
        )
    return table


def _table2_p_value(base: Sequence[StoredRun], group: Sequence[StoredRun], test: TTest):
    if test is TTest.COLUMNS:
        means = [[cell.value for cell in accuracy_cells(runs)] for runs in (base, group)]
        return t_test(*means, test)
    if test is TTest.PAIRED:
        base, group = _match_seeds(base, group)
    return t_test(accuracy_values(base)[-1], accuracy_values(group)[-1], test)


def base_mpt_group(runs: Sequence[StoredRun], hint: str) -> list[StoredRun]:
    """The configuration of full MPT (translator on, external auxiliary data) among the runs,
    preferring the paper's values of the ablated settings; when several remain the user narrows
    the selection with --where."""
    candidates = [
        group
        for group in group_runs(runs).values()
        if group[0].config["method"] == "mpt"
        and group[0].config.get("translator") not in (None, "none", "separate")
        and group[0].config.get("aux") not in (None, "none", "xnli-dev")
    ]
    if not candidates:
        raise InvalidInput(f"no finished full-MPT runs in the selection (see {hint})")
    defaults = RunConfig().to_dict()
    standard = [
        group
        for group in candidates
        if all(group[0].config.get(name) == defaults[name] for name in PAPER_MPT_SETTINGS)
    ]
    candidates = standard or candidates
    if len(candidates) > 1:
        settings = distinguishing_settings(candidates, ())
        raise InvalidInput(
            f"{len(candidates)} MPT configurations match ({'; '.join(settings)}); "
            "narrow the selection with {where}, e.g. {where} shots=64"
        )
    return candidates[0]


def _variant(config: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved config of `config` with `change` applied, as stored by a run."""
    values = {k: v for k, v in config.items() if k != "seed"}
    method = change.get("method", config["method"])
    defaults = RunConfig().to_dict()  # fields resolved away (None) come back from defaults
    values = {k: (defaults[k] if v is None else v) for k, v in values.items()}
    values.update(change, method=method, seed=config["seed"])
    return RunConfig.from_dict(values).resolved().to_dict()


def families(runs: Sequence[StoredRun]) -> ResultTable:
    """Figure 3: the accuracy gain of MPT relative to SP per language and per family."""
    mpt = base_mpt_group(runs, "mpt grid --methods sp,mpt --shots 32 --seeds 1-5")
    sp_key = config_key(_variant(mpt[0].config, {"method": "sp"}), VARIANT_IGNORE)
    sp = group_runs(runs, VARIANT_IGNORE).get(sp_key, [])
    if not sp:
        raise InvalidInput("no finished SP runs with the same settings as the MPT runs")
    task = single_task([*mpt, *sp])
    sp_means = [summarize(values).mean for values in accuracy_values(sp)[:-1]]
    mpt_means = [summarize(values).mean for values in accuracy_values(mpt)[:-1]]
    by_language = dict(zip(task.languages, zip(sp_means, mpt_means, strict=True), strict=True))
    table = ResultTable(
        title=f"Accuracy gain of MPT relative to SP at {count(mpt[0].config['shots'], 'shot')} (%)",
        label_columns=["Family", "Language"],
        value_columns=["SP", "MPT", "Gain %"],
        notes=[f"means over {len(sp)} SP and {len(mpt)} MPT seeds; gain = (MPT − SP) / SP"],
    )
    if not task.families:
        raise InvalidInput(f"task {task.name} names no language families (its families: key)")
    for family, members in task.families.items():
        for language in members:
            sp_mean, mpt_mean = by_language[language]
            cells = [Cell(sp_mean), Cell(mpt_mean), Cell(relative_gain(mpt_mean, sp_mean))]
            table.rows.append(Row([family, language.upper()], cells))
        if len(members) > 1:
            sp_mean = sum(by_language[m][0] for m in members) / len(members)
            mpt_mean = sum(by_language[m][1] for m in members) / len(members)
            cells = [Cell(sp_mean), Cell(mpt_mean), Cell(relative_gain(mpt_mean, sp_mean))]
            table.rows.append(Row([family, "all"], cells))
    for name, group in (("SP", sp), ("MPT", mpt)):
        collapsed = sum(run.collapsed for run in group)
        if collapsed:
            table.notes.append(
                f"{collapsed} of the {count(len(group), name + ' run')} collapsed ({MEANING})"
            )
    return table


def ablation(runs: Sequence[StoredRun], kind: str) -> ResultTable:
    """Figures 4-5: MPT accuracy as one setting varies, everything else fixed."""
    if kind not in ABLATIONS:
        raise InvalidInput(f"unknown ablation {kind!r}; choose one of {', '.join(ABLATIONS)}")
    axis, tied = ABLATIONS[kind].axis, ABLATIONS[kind].tied
    mpt = [run for run in runs if run.config["method"] == "mpt"]
    points = group_runs(mpt, ignore=("seed", axis, *tied))
    if not points:
        raise InvalidInput(
            f"no finished MPT runs for the {kind} ablation (mpt grid --preset {kind})"
        )
    if len(points) > 1:
        settings = distinguishing_settings([group for group in points.values()], (axis, *tied))
        raise InvalidInput(
            f"the runs differ in more than {axis} ({'; '.join(settings)}); narrow with {{where}}"
        )
    (runs_of_ablation,) = points.values()
    by_value = group_runs(runs_of_ablation)
    values = [group[0].config[axis] for group in by_value.values()]
    if len(set(map(repr, values))) < len(values):
        raise InvalidInput(f"several configurations share a value of {axis}; narrow with {{where}}")
    value_columns = columns(single_task(runs_of_ablation))
    table = ResultTable(
        title=f"MPT accuracy (%) by {kind}",
        label_columns=[kind, "Seeds"],
        value_columns=value_columns,
        notes=[STD_NOTE],
    )
    order = ABLATIONS[kind].order
    for group in sorted(by_value.values(), key=lambda g: order(g[0].config[axis])):
        table.rows.append(group_row([str(group[0].config[axis]), str(len(group))], group))
    table.mark_best([table.rows], value_columns)
    return table


def _finished(runs: Sequence[StoredRun], name: str) -> list[StoredRun]:
    finished = [run for run in runs if run.status is RunStatus.FINISHED]
    if not finished:
        raise InvalidInput(f"selection {name} has no finished runs")
    return finished


def _one_configuration(runs: Sequence[StoredRun], name: str) -> None:
    groups = list(group_runs(runs).values())
    if len(groups) > 1:
        settings = distinguishing_settings(groups, ())
        raise InvalidInput(
            f"selection {name} mixes {len(groups)} configurations ({'; '.join(settings)}), "
            "which would be averaged together; add a field=value that picks one"
        )


def _match_seeds(first: Sequence[StoredRun], second: Sequence[StoredRun]):
    by_seed = {run.config["seed"]: run for run in second}
    pairs = [(run, by_seed[run.config["seed"]]) for run in first if run.config["seed"] in by_seed]
    if len(pairs) < 2:
        raise InvalidInput("a paired test needs at least two seeds present in both selections")
    return [a for a, _ in pairs], [b for _, b in pairs]


def _note_unfinished(table: ResultTable, runs: Sequence[StoredRun]) -> None:
    unfinished = sum(run.status is not RunStatus.FINISHED for run in runs)
    if unfinished:
        table.notes.append(f"{count(unfinished, 'unfinished run')} not included")


def runs_table(runs: Sequence[StoredRun]) -> ResultTable:
    """The runs themselves, one row each, with their average accuracy, and (when the runs
    differ in more than method, shots and seed) what sets each apart."""
    settings = run_settings(runs)
    shown = any(setting != "—" for setting in settings)
    table = ResultTable(
        title=count(len(runs), "run"),
        label_columns=[
            "Run", "Method", "Shots", "Seed", *(["Setting"] if shown else []), "Status", "Started"
        ],
        value_columns=[AVERAGE],
    )  # fmt: skip
    for run, setting in zip(runs, settings, strict=True):
        labels = [
            run.run_id,
            str(run.config.get("method", "?")),
            str(run.config.get("shots", "?")),
            str(run.config.get("seed", "?")),
            *([setting] if shown else []),
            run.status,
            minute(run.started_at),
        ]
        average = Cell(run.average, collapsed=run.collapsed)
        table.rows.append(Row(labels, [average], runs=1, collapsed=int(run.collapsed)))
    return table

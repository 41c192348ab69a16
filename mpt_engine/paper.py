"""Our numbers beside the paper's published Tables I and II (assets/paper_results.json), with
the difference per cell."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

from mpt_engine.config import RunConfig
from mpt_engine.errors import InvalidInput
from mpt_engine.reports import P_FORMAT, PAPER_MPT_SETTINGS, table1, table2
from mpt_engine.results import StoredRun
from mpt_engine.run_state import RunStatus
from mpt_engine.stats import TTest
from mpt_engine.tables import Cell, ResultTable, Row, count

PAPER_RESULTS = Path(__file__).resolve().parents[1] / "assets" / "paper_results.json"


@cache
def paper_results() -> dict[str, Any]:
    return json.loads(PAPER_RESULTS.read_text(encoding="utf-8"))


def paper_comparison(runs: Sequence[StoredRun]) -> ResultTable:
    """Our Table I means beside the published ones, with the difference per cell."""
    published = paper_results()
    comparable, note = paper_setup_runs(runs)
    ours = table1([run for run in comparable if _paper_settings(run.config)])
    table = ResultTable(
        title=f"Ours vs the paper's Table I ({published['source']})",
        label_columns=[*ours.label_columns[:-1], "Source"],
        value_columns=ours.value_columns,
        notes=["ours: mean over seeds; Δ = ours − paper", *note],
    )
    for row in ours.rows:
        shots, method = row.labels[0], row.labels[1].lower()
        paper_row = published["table1"].get(method, {}).get(shots)
        labels = row.labels[:-1]
        means = [replace(cell, std=None, best=False) for cell in row.cells]
        seeds = f"ours ({count(int(row.labels[-1]), 'seed')})"
        table.rows.append(replace(row, labels=[*labels, seeds], cells=means))
        if paper_row is None:
            continue
        paper_cells = [Cell(value) for value in paper_row]
        table.rows.append(Row([*labels, "paper"], paper_cells))
        deltas = [Cell(o.value - p.value) for o, p in zip(row.cells, paper_cells, strict=True)]
        table.rows.append(Row([*labels, "Δ"], deltas))
    return table


def paper_table2_comparison(runs: Sequence[StoredRun], test: TTest = TTest.COLUMNS) -> ResultTable:
    """Our Table II beside the published one, with the difference per cell; p-values by the
    paper's own test unless `test` says otherwise."""
    published = paper_results()["table2_64_shots"]
    comparable, note = paper_setup_runs(runs)
    ours = table2(comparable, test)
    table = ResultTable(
        title=f"Ours vs the paper's Table II ({paper_results()['source']})",
        label_columns=["Model", "Source"],
        value_columns=ours.value_columns,
        notes=[*ours.notes, "ours: mean over seeds; Δ = ours − paper", *note],
    )
    for row in ours.rows:
        name, seeds = row.labels
        means = [replace(cell, std=None, best=False) for cell in row.cells]
        table.rows.append(
            replace(row, labels=[name, f"ours ({count(int(seeds), 'seed')})"], cells=means)
        )
        if name not in published:  # our second reading of "w/o prompt translator"
            continue
        paper = [
            *map(Cell, published[name]["values"]),
            Cell(published[name]["p_value"], fmt=P_FORMAT),
        ]
        table.rows.append(Row([name, "paper"], paper))
        deltas = [
            Cell(None if mine.value is None else mine.value - theirs.value)
            for mine, theirs in zip(means[:-1], paper[:-1], strict=True)
        ]
        table.rows.append(Row([name, "Δ"], [*deltas, Cell(None)]))
    return table


# What the paper's numbers were measured with (RunConfig's defaults are the paper's setup).
PAPER_SETUP = ("task", "model", "epochs", "batch_size", "lr", "weight_decay", "max_length")
SETUP_WORDS = "XNLI, XLM-R base, 50 epochs, the paper's optimiser, real data, full test sets"


def paper_setup_runs(runs: Sequence[StoredRun]) -> tuple[list[StoredRun], list[str]]:
    """The finished runs comparable with the published numbers, and a note on those left out
    (a smoke run's Δ against the paper would mean nothing); InvalidInput when none is."""
    defaults = RunConfig().to_dict()

    def comparable(config: Mapping[str, Any]) -> bool:
        same = all(config.get(name, defaults[name]) == defaults[name] for name in PAPER_SETUP)
        return same and config.get("data") != "synthetic" and config.get("test_limit") is None

    finished = [run for run in runs if run.status is RunStatus.FINISHED]
    kept = [run for run in finished if comparable(run.config)]
    if finished and not kept:
        raise InvalidInput(
            f"none of the {count(len(finished), 'finished run')} is in the paper's setup "
            f"({SETUP_WORDS}): a comparison with the published numbers would mislead"
        )
    left = len(finished) - len(kept)
    note = [f"{count(left, 'run')} left out: not in the paper's setup ({SETUP_WORDS})"]
    return kept, note if left else []


def _paper_settings(config: Mapping[str, Any]) -> bool:
    """Whether a run uses the paper's prompt, translator and alpha (its method's Table I row)."""
    defaults = RunConfig().to_dict()
    same = all(config.get(name) in (None, defaults[name]) for name in PAPER_MPT_SETTINGS)
    return same and config.get("aux") in (None, "pawsx", "paws15")

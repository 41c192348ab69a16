"""One table model for every report, exported to CSV, Markdown, LaTeX and JSON (the terminal
rendering lives in the front end)."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from mpt_engine.collapse import MEANING

COLLAPSE_MARK = "†"  # on a value that collapsed runs (collapse.py) went into
COLLAPSED_COLUMN = "collapsed runs"  # the CSV's column of them, when there are any
COLLAPSED_RUN_NOTE = f"{COLLAPSE_MARK} a collapsed run: {MEANING}"  # a list of runs' footnote
FORMATS = ("text", "csv", "md", "latex", "json")


def count(number: int, noun: str) -> str:
    """ "1 run", "2 runs"."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


@dataclass(frozen=True)
class Cell:
    value: float | None  # a mean, a difference or a p-value; None: no data
    std: float | None = None
    best: bool = False
    fmt: str | None = None  # overrides the column's format (p-values: .1e)
    collapsed: bool = False  # some of the runs behind it collapsed: marked

    def text(self, fmt: str, plus_minus: str = " ± ", mark: str = COLLAPSE_MARK) -> str:
        if self.value is None:
            return "—"
        fmt = self.fmt or fmt
        shown = rounded(self.value, fmt)
        if self.std is not None:
            shown += f"{plus_minus}{rounded(self.std, fmt)}"
        return shown + mark if self.collapsed else shown


def rounded(value: float, fmt: str = ".1f") -> str:
    """`value` in `fmt`, a fixed-point format rounding half up as people do (36.25 -> 36.3;
    format() rounds the binary value half to even: 36.2)."""
    if not (fmt.startswith(".") and fmt.endswith("f")) or not math.isfinite(value):
        return format(value, fmt)
    step = Decimal(1).scaleb(-int(fmt[1:-1]))
    return format(Decimal(repr(value)).quantize(step, rounding=ROUND_HALF_UP), "f")


@dataclass
class Row:
    labels: list[str]
    cells: list[Cell]
    runs: int = 0  # the finished runs its values come from (0: published or derived values)
    collapsed: int = 0  # how many of them collapsed


@dataclass
class ResultTable:
    title: str
    label_columns: list[str]
    value_columns: list[str]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)  # column -> format spec, default .1f

    def fmt(self, column: str) -> str:
        return self.formats.get(column, ".1f")

    def footnotes(self) -> list[str]:
        return [*self.notes, *self.collapse_notes()]

    def collapse_notes(self) -> list[str]:
        """What the collapse marks mean: one line when each marked row is one run, else how
        many of each marked row's runs collapsed."""
        marked = [row for row in self.rows if row.collapsed]
        if marked and all(row.runs == 1 for row in marked):
            return [COLLAPSED_RUN_NOTE]
        return [self._collapse_note(row) for row in marked]

    def _collapse_note(self, row: Row) -> str:
        named = ", ".join(
            f"{column} {label}"
            for column, label in zip(self.label_columns, row.labels, strict=True)
            if label
        )
        collapsed = f"{row.collapsed} of {count(row.runs, 'run')} collapsed"
        return f"{COLLAPSE_MARK} {named}: {collapsed} ({MEANING})"

    def mark_best(self, groups: list[list[Row]], columns: list[str]) -> None:
        """Mark the highest value of each column within each group of rows (the paper's bold)."""
        for rows in groups:
            for column in columns:
                index = self.value_columns.index(column)
                values = [
                    row.cells[index].value for row in rows if row.cells[index].value is not None
                ]
                if len(values) < 2:
                    continue
                top = max(values)
                for row in rows:
                    cell = row.cells[index]
                    if cell.value == top:
                        row.cells[index] = replace(cell, best=True)


def export(table: ResultTable, fmt: str) -> str:
    return {"csv": to_csv, "md": to_markdown, "latex": to_latex, "json": to_json}[fmt](table)


def to_csv(table: ResultTable) -> str:
    with_std = {
        column
        for index, column in enumerate(table.value_columns)
        if any(row.cells[index].std is not None for row in table.rows)
    }
    header = list(table.label_columns)
    for column in table.value_columns:
        header.append(column)
        if column in with_std:
            header.append(f"{column} std")
    flagged = any(row.collapsed for row in table.rows)
    if flagged:
        header.append(COLLAPSED_COLUMN)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        values: list[Any] = list(row.labels)
        for column, cell in zip(table.value_columns, row.cells, strict=True):
            values.append("" if cell.value is None else repr(cell.value))
            if column in with_std:
                values.append("" if cell.std is None else repr(cell.std))
        if flagged:
            values.append(row.collapsed)
        writer.writerow(values)
    return buffer.getvalue()


def to_markdown(table: ResultTable) -> str:
    header = [*table.label_columns, *table.value_columns]
    lines = [
        f"**{table.title}**",
        "",
        "| " + " | ".join(header) + " |",
        "|"
        + "|".join(["---"] * len(table.label_columns) + ["---:"] * len(table.value_columns))
        + "|",
    ]
    for row in table.rows:
        cells = []
        for column, cell in zip(table.value_columns, row.cells, strict=True):
            text = cell.text(table.fmt(column))
            cells.append(f"**{text}**" if cell.best else text)
        lines.append("| " + " | ".join([*row.labels, *cells]) + " |")
    notes = table.footnotes()
    lines.extend(["", *(f"_{note}_" for note in notes)] if notes else [])
    return "\n".join(lines) + "\n"


LATEX_MARK = r"$^\dagger$"
_LATEX_SPECIAL = {
    "&": r"\&",
    "%": r"\%",
    COLLAPSE_MARK: LATEX_MARK,
    "≥": r"$\geq$",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text).replace("±", r"$\pm$")


def to_latex(table: ResultTable) -> str:
    spec = "l" * len(table.label_columns) + "r" * len(table.value_columns)
    header = [*table.label_columns, *table.value_columns]
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{_latex_escape(table.title)}}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(_latex_escape(column) for column in header) + r" \\",
        r"\midrule",
    ]
    for row in table.rows:
        cells = []
        for column, cell in zip(table.value_columns, row.cells, strict=True):
            text = cell.text(table.fmt(column), plus_minus=r"$\pm$", mark=LATEX_MARK)
            cells.append(rf"\textbf{{{text}}}" if cell.best else text)
        lines.append(" & ".join([*(_latex_escape(label) for label in row.labels), *cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    # The other notes stay out of a table for a paper; a collapse warning never does.
    lines += [r"\par\footnotesize " + _latex_escape(note) for note in table.collapse_notes()]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_json(table: ResultTable) -> str:
    rows = []
    for row in table.rows:
        values = {
            column: {"value": cell.value, "std": cell.std, "best": cell.best}
            for column, cell in zip(table.value_columns, row.cells, strict=True)
        }
        labels = dict(zip(table.label_columns, row.labels, strict=True))
        rows.append(
            {"labels": labels, "values": values, "runs": row.runs, "collapsed": row.collapsed}
        )
    document = {
        "title": table.title,
        "columns": table.value_columns,
        "rows": rows,
        "notes": table.footnotes(),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"

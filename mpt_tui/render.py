"""Rich renderings of results: a run's per-language row, and any report table."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from mpt_engine.collapse import recorded
from mpt_engine.languages import LANGUAGE_NAMES
from mpt_engine.tables import COLLAPSE_MARK, Cell, ResultTable, rounded


def result_table(result: dict, width: int = 120) -> Table:
    """Accuracy (%) per language and the average: in a row like the paper's Table I when the
    terminal is wide enough, else one language per line."""
    per_language = result["per_language"]
    method, shots, seed = result["method"].upper(), result["shots"], result["seed"]
    title = f"{method}  k={shots}  seed={seed}  {result['run_id']}"
    if width >= 5 * (len(per_language) + 1) + 4:  # the languages and the average, 5 each, fit
        table = Table(title=title, box=box.SIMPLE_HEAD, padding=0)
        for language in per_language:
            table.add_column(language.upper(), justify="right")
        table.add_column("Avg.", justify="right", style="bold")
        values = [*per_language.values(), result["average"]]
        table.add_row(*(rounded(value) for value in values))
        return table
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("language")
    table.add_column("accuracy", justify="right")
    for language, accuracy in per_language.items():
        name = LANGUAGE_NAMES.get(language, "")
        table.add_row(f"{language.upper()}  {name}", rounded(accuracy))
    table.add_section()
    table.add_row("Avg.", rounded(result["average"]), style="bold")
    return table


def rich_tables(table: ResultTable, console: Console) -> list[Table | Text]:
    """A report as rich tables: mean over ± std in each cell, the best in bold, then the notes
    (as wide as the console, not the table). Columns that do not fit the console continue in a
    further table (like pandas)."""
    cells = [
        [
            _cell_text(cell, table.fmt(column))
            for column, cell in zip(table.value_columns, row.cells, strict=True)
        ]
        for row in table.rows
    ]
    remaining = list(range(len(table.value_columns)))
    unbounded = console.options.update_width(10_000)
    parts: list[Table] = []
    while remaining:
        chunk = remaining
        while len(chunk) > 1:
            part = _part(table, cells, chunk, first=not parts)
            if Measurement.get(console, unbounded, part).maximum <= console.width:
                break
            chunk = chunk[:-1]
        remaining = remaining[len(chunk) :]
        parts.append(_part(table, cells, chunk, first=not parts))
    notes = [Text(note, style="dim") for note in table.footnotes()]
    return [*parts, *notes]


def _part(table: ResultTable, cells: list[list[Text]], chunk: list[int], first: bool) -> Table:
    part = Table(
        title=table.title if first else None,
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,  # one space between columns: the runs list fits 80 columns
    )
    for name in table.label_columns:
        part.add_column(name, no_wrap=True)
    for index in chunk:
        part.add_column(table.value_columns[index], justify="right", no_wrap=True)
    for row, texts in zip(table.rows, cells, strict=True):
        part.add_row(*row.labels, *(texts[index] for index in chunk))
    return part


def _cell_text(cell: Cell, fmt: str) -> Text:
    if cell.value is None:
        return Text("—", style="dim")
    mean = Text(rounded(cell.value, cell.fmt or fmt), style="bold" if cell.best else "")
    if cell.collapsed:
        mean.append(COLLAPSE_MARK, style="yellow")
    if cell.std is not None:
        mean.append(f"\n±{rounded(cell.std, cell.fmt or fmt)}", style="dim")
    return mean


def collapse_warning(result: dict | None) -> str | None:
    """The warning line of a run whose test predictions collapsed into one class, for `mpt
    run`, `mpt results show` and the app's run detail; None when it did not, or is not known."""
    collapse = recorded(result)
    return f"warning: {collapse.warning()}" if collapse and collapse.collapsed else None


def print_collapse_warning(console: Console, result: dict | None) -> None:
    warning = collapse_warning(result)
    if warning:
        console.print(warning, style="yellow", highlight=False, markup=False, soft_wrap=True)


def run_summary(stored) -> list[tuple[str, str]]:
    """What `mpt results show` and the app's run detail say of a run, as (field, value) rows:
    its settings, when and where it ran, the versions and commit, the command that reruns it
    and, for a Slurm task, its job and logs."""
    from mpt_engine.record import minute
    from mpt_engine.slurm import submissions
    from mpt_tui.commands.options import rerun_line

    rows = [(key, str(value)) for key, value in stored.config.items() if value is not None]
    record = stored.record
    for key in ("started_at", "finished_at", "device", "hostname", "python"):
        if record.get(key):
            value = str(record[key])
            rows.append((key, minute(value) if key.endswith("_at") else value))
    libraries = record.get("libraries") or {}
    rows.append(("versions", " ".join(f"{k} {v}" for k, v in libraries.items() if v)))
    git = record.get("git") or {}
    if git:
        rows.append(
            ("git", f"{git.get('commit', '')[:12]}{' (dirty)' if git.get('dirty') else ''}")
        )
    rows.append(("rerun", rerun_line(stored)))
    submitted = submissions().get(stored.run_id)
    if submitted:
        rows.append(("slurm job", submitted["job_id"]))
        rows.append(("slurm logs", f"{submitted['stdout']}\n{submitted['stderr']}"))
    return rows


def duration(seconds: float) -> str:
    """A time estimate as people say it: 40 s, 12 min, 3.5 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


LONG_TABLE = 500  # rows beyond which a report prints as plain aligned text


def plain_lines(table: ResultTable) -> list[str]:
    """A long report (the runs list of a large store) as aligned text lines: the title, the
    header, one line per row (means only), the notes; in a fraction of rich's time."""
    header = [*table.label_columns, *table.value_columns]
    rows = [
        [
            *row.labels,
            *(
                cell.text(table.fmt(column), "±")
                for column, cell in zip(table.value_columns, row.cells, strict=True)
            ),
        ]
        for row in table.rows
    ]
    widths = [max(len(str(line[i])) for line in [header, *rows]) for i in range(len(header))]
    values = len(table.label_columns)

    def line(cells) -> str:
        return "  ".join(
            str(cell).rjust(width) if index >= values else str(cell).ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [
        table.title,
        line(header),
        line("-" * width for width in widths),
        *map(line, rows),
        *table.footnotes(),
    ]

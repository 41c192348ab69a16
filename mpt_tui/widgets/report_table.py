"""A report (mpt_engine.tables.ResultTable) shown in a DataTable."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from mpt_engine.tables import ResultTable


def fill(widget: DataTable, table: ResultTable) -> None:
    """Replace the DataTable's content with the report; best cells bold, mean ± std."""
    widget.clear(columns=True)
    for name in table.label_columns:
        widget.add_column(name, key=f"label:{name}")
    for name in table.value_columns:
        widget.add_column(Text(name, justify="right"), key=f"value:{name}")
    for row in table.rows:
        cells = [
            Text(
                cell.text(table.fmt(column), plus_minus="±"),
                style="bold" if cell.best else "",
                justify="right",
            )
            for column, cell in zip(table.value_columns, row.cells, strict=True)
        ]
        widget.add_row(*row.labels, *cells)

"""Export the table in view to a file."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from mpt_engine.paths import exports_dir
from mpt_engine.tables import ResultTable, export

SUFFIXES = {"csv": ".csv", "md": ".md", "latex": ".tex", "json": ".json"}


class ExportScreen(ModalScreen[Path | None]):
    """Asks for a format and a path; writes the file and returns its absolute path (None:
    cancelled)."""

    BINDINGS = [("escape", "cancel", "Cancel")]

    def __init__(self, table: ResultTable, name: str) -> None:
        super().__init__()
        self.table, self.stem = table, name

    def compose(self) -> ComposeResult:
        with Vertical(id="export-box"):
            yield Label(f"Export: {self.table.title}", id="export-title")
            yield Select(
                [(name, name) for name in SUFFIXES],
                value="csv",
                allow_blank=False,
                id="export-format",
            )
            yield Input(value=str(exports_dir() / f"{self.stem}.csv"), id="export-path")
            yield Label("", id="export-error", classes="field-error")
            with Horizontal():
                yield Button("Export", id="export-write", variant="primary")
                yield Button("Cancel", id="export-cancel")

    @on(Select.Changed, "#export-format")
    def _format_changed(self, event: Select.Changed) -> None:
        path = self.query_one("#export-path", Input)
        path.value = str(Path(path.value).with_suffix(SUFFIXES[event.value]))

    @on(Button.Pressed, "#export-write")
    @on(Input.Submitted, "#export-path")
    def _write(self) -> None:
        fmt = self.query_one("#export-format", Select).value
        path = Path(self.query_one("#export-path", Input).value).expanduser().resolve()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(export(self.table, fmt), encoding="utf-8")
        except OSError as error:
            message = self.query_one("#export-error", Label)
            message.update(f"cannot write {path}: {error.strerror}")
            message.add_class("visible")
            return
        self.dismiss(path)

    @on(Button.Pressed, "#export-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

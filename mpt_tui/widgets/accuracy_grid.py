"""The per-language accuracy grid of a run's task, each cell coloured from chance (33.3 for
three labels) to the best value."""

from __future__ import annotations

from rich.color import Color, blend_rgb
from rich.style import Style
from rich.table import Table
from textual.widgets import Static

from mpt_engine.tasks import Task, load_task

LOW, HIGH = Color.parse("#b03a2e").triplet, Color.parse("#1e8449").triplet


def heat_style(accuracy: float, top: float, chance: float) -> Style:
    """Red at or below chance, green at the top value; white text reads on both."""
    span = max(top - chance, 1.0)
    share = min(max((accuracy - chance) / span, 0.0), 1.0)
    return Style(color="white", bgcolor=Color.from_triplet(blend_rgb(LOW, HIGH, share)), bold=True)


def grid_table(
    per_language: dict[str, float], average: float | None, columns: int, task: Task
) -> Table:
    """The task's languages in rows of `columns`, the average last; missing ones show a dot."""
    table = Table(box=None, padding=(0, 1), pad_edge=False, show_header=False)
    names = [*task.languages, "avg"]
    values = {**per_language, "avg": average}
    chance = 100 / len(task.labels)
    top = max([v for v in values.values() if v is not None], default=chance)
    chunks = [names[start : start + columns] for start in range(0, len(names), columns)]
    for _ in range(len(chunks[0])):
        table.add_column(justify="center", min_width=5)
    for chunk in chunks:
        table.add_row(*(f"[bold]{name.upper()}[/]" for name in chunk))
        cells = []
        for name in chunk:
            value = values.get(name)
            style = None if value is None else heat_style(value, top, chance)
            cells.append("·" if value is None else f"[{style}]{value:5.1f}[/]")
        table.add_row(*cells)
    return table


class AccuracyGrid(Static):
    DEFAULT_CSS = "AccuracyGrid { height: auto; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.per_language: dict[str, float] = {}
        self.average: float | None = None
        self.of_task = load_task()

    def show(
        self, per_language: dict[str, float], average: float | None = None, task: Task | None = None
    ) -> None:
        self.per_language, self.average = dict(per_language), average
        self.of_task = task or self.of_task
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        # 16 cells (15 languages and the average), 5 characters and a space either side but at
        # the edges: 1, 2 or 4 rows of them.
        columns = next((n for n in (16, 8) if self.size.width >= 7 * n - 2), 4)
        self.update(grid_table(self.per_language, self.average, columns, self.of_task))

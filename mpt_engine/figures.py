"""Figures as data (panels of series), written to PNG/SVG/PDF with matplotlib. The terminal
front end draws the same data with plotext."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpt_engine.errors import InvalidInput
from mpt_engine.paths import check_writable
from mpt_engine.reports import AVERAGE
from mpt_engine.tables import ResultTable

FILE_FORMATS = (".png", ".svg", ".pdf")


@dataclass
class Series:
    label: str
    x: list[Any]
    y: list[float]
    error: list[float] | None = None
    right: bool = False  # on the right y axis (KL, a thousand times smaller than CE)


@dataclass
class Panel:
    title: str
    xlabel: str
    ylabel: str
    kind: str = "line"  # line or bar
    series: list[Series] = field(default_factory=list)
    right_label: str = ""  # the right y axis's, when a series uses it


@dataclass
class Figure:
    title: str
    panels: list[Panel]


def loss_figure(run_id: str, events: Sequence[dict[str, Any]]) -> Figure:
    """Loss curves per step (total, CE, KL) and the English dev accuracy per epoch."""
    steps = [event for event in events if event.get("event") == "train_step"]
    dev = [event for event in events if event.get("event") == "dev_evaluated"]
    if not steps:
        raise InvalidInput(f"run {run_id} has no training steps yet")
    x = [event["step"] for event in steps]
    losses = Panel("losses", "step", "loss (total, CE)")
    for name in ("loss", "ce", "kl"):
        values = [event.get(name) for event in steps]
        if all(value is not None for value in values):
            label = "total" if name == "loss" else name.upper()
            losses.series.append(Series(label, x, values, right=name == "kl"))
    if any(series.right for series in losses.series):
        losses.right_label = "KL"
    accuracy = Panel("English dev accuracy", "epoch", "accuracy (%)")
    if dev:
        accuracy.series.append(
            Series("dev", [event["epoch"] for event in dev], [event["accuracy"] for event in dev])
        )
    return Figure(run_id, [losses, accuracy])


def family_figure(table: ResultTable) -> Figure:
    """Figure 3: gain of MPT relative to SP per language, one colour per family."""
    gain = table.value_columns.index("Gain %")
    panel = Panel(table.title, "language", "relative gain (%)", kind="bar")
    families = dict.fromkeys(row.labels[0] for row in table.rows)  # the task's, in its order
    for family in families:
        rows = [row for row in table.rows if row.labels[0] == family and row.labels[1] != "all"]
        panel.series.append(
            Series(family, [row.labels[1] for row in rows], [row.cells[gain].value for row in rows])
        )
    return Figure(table.title, [panel])


def ablation_figure(table: ResultTable, numeric: bool) -> Figure:
    """Figures 4-5: the average accuracy (± std over seeds) for each value of a setting."""
    average = table.value_columns.index(AVERAGE)
    axis = table.label_columns[0]
    labels = [row.labels[0] for row in table.rows]
    x: list[Any] = [float(label) for label in labels] if numeric else labels
    cells = [row.cells[average] for row in table.rows]
    series = Series("MPT", x, [cell.value for cell in cells], [cell.std or 0.0 for cell in cells])
    panel = Panel(table.title, axis, "average accuracy (%)", "line" if numeric else "bar", [series])
    return Figure(table.title, [panel])


def check_figure_path(path: Path | None) -> Path | None:
    if path is not None and path.suffix.lower() not in FILE_FORMATS:
        raise InvalidInput(f"{{plot}} {path}: the file must end in {', '.join(FILE_FORMATS)}")
    if path is not None:
        check_writable(path.parent, f"{{plot}} {path}: the folder")
    return path


def save_figure(figure: Figure, path: Path) -> Path:
    """Write the figure; the format follows the file's suffix (.png, .svg or .pdf)."""
    check_figure_path(path)
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    columns = len(figure.panels)
    canvas, axes = pyplot.subplots(1, columns, figsize=(7.2 * columns, 4.2), squeeze=False)
    for axis, panel in zip(axes[0], figure.panels, strict=True):
        _draw(axis, panel)
    if columns > 1:
        canvas.suptitle(figure.title)
    canvas.tight_layout()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        canvas.savefig(path, dpi=150)
    except OSError as error:
        raise InvalidInput(f"{{plot}} {path}: cannot write it ({error.strerror})") from None
    finally:
        pyplot.close(canvas)
    return path


def _draw(axis, panel: Panel) -> None:
    from matplotlib import colormaps
    from matplotlib.ticker import MaxNLocator

    colours = colormaps["tab20"].colors
    axes = [axis]
    if panel.kind == "bar":
        position = 0
        for index, series in enumerate(panel.series):
            places = list(range(position, position + len(series.x)))
            colour = colours[(2 * index) % 20 if len(panel.series) <= 10 else index % 20]
            axis.bar(
                places, series.y, yerr=series.error, label=series.label, capsize=3, color=colour
            )
            position += len(series.x)
        names = [name for series in panel.series for name in series.x]
        axis.set_xticks(range(len(names)), names)
        axis.axhline(0, color="grey", linewidth=0.8)
    else:
        if panel.right_label:
            axes.append(axis.twinx())
            axes[1].set_ylabel(panel.right_label)
        for index, series in enumerate(panel.series):
            axes[-1 if series.right else 0].errorbar(
                series.x,
                series.y,
                yerr=series.error,
                label=series.label,
                marker="o" if series.error else None,
                capsize=3,
                color=colours[(2 * index) % 20],
            )
    if panel.xlabel in ("step", "epoch"):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_title(panel.title)
    axis.set_xlabel(panel.xlabel)
    axis.set_ylabel(panel.ylabel)
    if len(panel.series) > 1:  # one legend for both y axes
        pairs = [one.get_legend_handles_labels() for one in axes]
        entries = [entry for found, names in pairs for entry in zip(found, names, strict=True)]
        handles, labels = zip(*entries, strict=True)
        place = (1.12 if panel.right_label else 1.01, 1.0)
        axis.legend(handles, labels, fontsize="small", loc="upper left", bbox_to_anchor=place)
    axis.grid(alpha=0.3)

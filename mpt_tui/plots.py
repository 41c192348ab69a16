"""Figures drawn in the terminal with plotext (the files are written by mpt_engine.figures)."""

from __future__ import annotations

from rich.text import Text

from mpt_engine.figures import Figure, Panel


def render(figure: Figure, width: int = 80, height: int = 16) -> Text:
    """One plotext chart per panel, stacked, as rich Text."""
    return Text("\n").join(render_panel(panel, width, height) for panel in figure.panels)


def render_panel(panel: Panel, width: int, height: int) -> Text:
    """A panel as a plotext chart. plotext keeps global state: call from one thread only."""
    import plotext

    plotext.clf()
    plotext.theme("clear")
    plotext.plotsize(max(width, 20), max(height, 5))
    _draw(plotext, panel)
    ticks = integer_ticks(panel, width)
    if ticks:
        plotext.xticks(ticks)
    plotext.title(panel.title)
    plotext.xlabel(panel.xlabel)
    return Text.from_ansi(plotext.build())


def _draw(plotext, panel: Panel) -> None:
    if panel.kind == "bar":
        names = [str(name) for series in panel.series for name in series.x]
        values = [value for series in panel.series for value in series.y]
        plotext.bar(names, values)
        return
    for series in panel.series:
        if series.x:
            plotext.plot(series.x, series.y, label=series.label, marker="hd")


def integer_ticks(panel: Panel, width: int) -> list[int]:
    """Ticks at round whole numbers (1, 2, 5, 10, 20 ... apart, about one per 8 columns) when
    x counts something (steps, epochs); plotext's own would show 1.50 epochs. Else none."""
    xs = [x for series in panel.series for x in series.x]
    if panel.kind != "line" or not xs or not all(isinstance(x, int) for x in xs):
        return []
    low, high = min(xs), max(xs)
    wanted = (high - low) / max(width // 8, 2)
    sizes = (digit * 10**power for power in range(12) for digit in (1, 2, 5))
    step = next(size for size in sizes if size >= wanted)
    return list(range(-(-low // step) * step, high + 1, step))

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

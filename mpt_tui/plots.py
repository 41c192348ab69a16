"""Figures drawn in the terminal with plotext (the files are written by mpt_engine.figures)."""

from __future__ import annotations

from rich.text import Text

from mpt_engine.figures import Figure, Panel


def render(figure: Figure, width: int = 80, height: int = 16) -> Text:
    """One plotext chart per panel, stacked, as rich Text."""
    import plotext

    charts = []
    for panel in figure.panels:
        plotext.clf()
        plotext.theme("clear")
        plotext.plotsize(width, height)
        _draw(plotext, panel)
        plotext.title(panel.title)
        plotext.xlabel(panel.xlabel)
        charts.append(plotext.build())
    return Text.from_ansi("\n".join(charts))


def _draw(plotext, panel: Panel) -> None:
    if panel.kind == "bar":
        names = [str(name) for series in panel.series for name in series.x]
        values = [value for series in panel.series for value in series.y]
        plotext.bar(names, values)
        return
    for series in panel.series:
        if series.x:
            plotext.plot(series.x, series.y, label=series.label, marker="braille")

"""Figures drawn in the terminal with plotext (the files are written by mpt_engine.figures): the
CLI prints them with plotext's module, the app draws each on its own PlotextPlot."""

from __future__ import annotations

from rich.text import Text

from mpt_engine.figures import Figure, Panel


def render(figure: Figure, width: int = 80, height: int = 16) -> Text:
    """One plotext chart per panel, stacked, as rich Text."""
    return Text("\n").join(render_panel(panel, width, height) for panel in figure.panels)


def render_panel(panel: Panel, width: int, height: int) -> Text:
    """A panel as a plotext chart. plotext's module keeps global state: the CLI's, one thread."""
    import plotext

    plotext.clf()
    plotext.theme("clear")
    plotext.plotsize(max(width, 20), max(height, 5))
    draw(plotext, panel, width)
    return Text.from_ansi(plotext.build())


COLOURS = ("cyan+", "orange+", "magenta+", "green+", "red+", "blue+")  # one per series


def draw(plt, panel: Panel, width: int) -> None:
    """The panel's series, ticks, title and label on `plt`: plotext's module, or a plot's own."""
    if panel.kind == "bar":
        names = [str(name) for series in panel.series for name in series.x]
        values = [value for series in panel.series for value in series.y]
        plt.bar(names, values)
    else:
        for series, colour in zip(panel.series, COLOURS, strict=False):
            if series.x:
                side = "right" if series.right else "left"
                plt.plot(
                    series.x, series.y, label=series.label, marker="hd", color=colour, yside=side
                )
        if panel.right_label:
            plt.ylabel(panel.right_label, yside="right")
    ticks = integer_ticks(panel, width)
    if ticks:
        plt.xticks(ticks)
    plt.title(panel.title)
    plt.xlabel(panel.xlabel)


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

"""Live loss curves (total, CE, KL) per training step, on a plot of its own (textual-plotext's
PlotextPlot: plotext's module keeps one global figure, which is not safe across widgets)."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from mpt_engine.figures import loss_figure
from mpt_engine.run_state import RunState
from mpt_tui.plots import draw


class LossPlot(PlotextPlot):
    DEFAULT_CSS = "LossPlot { height: 1fr; min-height: 8; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.run: RunState | None = None
        self.drawn_steps = -1

    def on_mount(self) -> None:
        super().on_mount()
        self.plt.title("no training steps yet")

    def show(self, run: RunState | None) -> None:
        self.run = run
        self.redraw(force=True)

    def redraw(self, force: bool = False) -> None:
        """Draw again when new steps arrived (or on demand: resize, another run)."""
        run = self.run
        steps = len(run.steps) if run else 0
        if not force and steps == self.drawn_steps:
            return
        self.drawn_steps = steps
        self.plt.clear_figure()
        if run is None or not steps:
            self.plt.title("no training steps yet")
        else:
            losses = loss_figure(run.run_id, [step.to_dict() for step in run.steps]).panels[0]
            losses.title = f"losses  (step {steps}/{run.total_steps})"
            draw(self.plt, losses, self.size.width)
        self.refresh()

    def on_resize(self) -> None:
        self.redraw(force=True)

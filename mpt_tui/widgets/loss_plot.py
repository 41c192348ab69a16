"""Live loss curves (total, CE, KL) per training step, drawn with plotext."""

from __future__ import annotations

from textual.widgets import Static

from mpt_engine.figures import loss_figure
from mpt_engine.run_state import RunState
from mpt_tui.plots import render_panel


class LossPlot(Static):
    DEFAULT_CSS = "LossPlot { height: 1fr; min-height: 8; }"

    def __init__(self, **kwargs) -> None:
        super().__init__("no training steps yet", **kwargs)
        self.run: RunState | None = None
        self.drawn_steps = -1

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
        if run is None or not steps:
            self.update("no training steps yet")
            return
        losses = loss_figure(run.run_id, [step.to_dict() for step in run.steps]).panels[0]
        losses.title = f"losses  (step {steps}/{run.total_steps})"
        self.update(render_panel(losses, self.size.width, self.size.height))

    def on_resize(self) -> None:
        self.redraw(force=True)

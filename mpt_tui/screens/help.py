"""Help: what each screen does and its keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# mpt

**F2 (or 1) Launch** — choose methods, shots, seeds, backbone, data and ablation settings, or a
preset (`table1` is the paper's 180 runs); the line under the preset says what it runs, and
ticked boxes or filled fields replace its lists. Empty fields show, greyed, what they will be.
Lists are comma-separated; integers take ranges (`1-5`). A bad value turns its field red, and
the bar at the bottom says what is wrong. `ctrl+r` launches: runs train in worker processes,
so a crash never takes the app down, one after another or several at a time (GPUs `0,1`, and
runs per GPU, by default from the GPU's free memory), or, with the executor set to Slurm, the
runs go to the cluster as one job array (GPUs per run and partition beside it). Finished runs are
never trained again.

**F3 (or 2) Runs** — the runs launched here and those another process trains (`mpt run`,
`mpt grid` elsewhere), following the newest that trains unless you pick one with `↑`/`↓`; for
that run its progress, loss curves (total and CE on the left axis, KL on the right), dev
accuracy and, after testing, its task's language grid (red: chance, green: best).
`c` cancels after asking (`y` or `enter` yes, `n` or `escape` no): running children stop and
are recorded as interrupted, queued runs are dropped.

**F4 (or 3) Results** — every run in the store, including those started by `mpt run`
and `mpt grid` (followed as their folders change); the last column says what sets a run
apart. `/` goes to the filter (`method=mpt shots=64 task=pawsx`, or part of a run id) and
`escape` leaves it; `s` sorts by the column under the cursor, pressed again the other way
(or click a header); `]` and `[` turn the pages of a long list (200 runs a page); `enter`
opens a run; `d` moves it to `$MPT_HOME/trash` after asking.
Tabs (click them, or `tab` to the tab bar and `←`/`→`): **Table I** (mean ± std over seeds,
best in bold among comparable rows), **Families** (Figure 3: gain of MPT over SP),
**Compare** (two selections, two-tailed t-test). `e` exports the table in view (CSV,
Markdown, LaTeX, JSON).

**Everywhere** — `F1` or `?` this help, `ctrl+p` the command palette, `ctrl+t` light or dark
theme, `q` quit (while runs train here, after asking: their children are stopped first).
"""


class HelpScreen(ModalScreen):
    BINDINGS = [("escape,f1,question_mark", "app.pop_screen", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Markdown(HELP)

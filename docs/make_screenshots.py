"""Regenerate the app's screenshots in docs/screenshots (SVG, via Textual's save_screenshot).

    .venv/bin/python docs/make_screenshots.py

Works offline: it trains a few smoke runs (tiny model; ../shared/data when present, else the
synthetic sample) in a temporary run store, then drives the app with the Pilot.
"""

import asyncio
import os
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "screenshots"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


async def shoot(size: tuple[int, int], seed: int) -> None:
    from textual.widgets import Input, Select, SelectionList

    from mpt_tui.app import MptApp

    suffix = f"{size[0]}x{size[1]}"
    app = MptApp()
    async with app.run_test(size=size) as pilot:
        screen = app.screen
        screen.query_one("#preset", Select).value = "smoke"
        screen.query_one("#methods", SelectionList).select("mpt")
        screen.query_one("#field-seed", Input).value = str(seed)
        screen.query_one("#field-epochs", Input).value = "6"
        await pilot.pause(0.5)
        app.save_screenshot(f"launcher-{suffix}.svg", path=str(OUT))
        await pilot.press("ctrl+r")
        (run,) = app.runs.values()
        deadline = time.monotonic() + 120
        while len(run.steps) < 20 and time.monotonic() < deadline:
            await pilot.pause(0.2)
        await pilot.pause(0.6)
        app.save_screenshot(f"live-training-{suffix}.svg", path=str(OUT))
        while run.status != "finished" and time.monotonic() < deadline:
            await pilot.pause(0.2)
        await pilot.pause(0.6)
        app.save_screenshot(f"live-finished-{suffix}.svg", path=str(OUT))
        await pilot.press("f4")
        await pilot.pause(1.0)
        app.save_screenshot(f"results-{suffix}.svg", path=str(OUT))
        app.screen.query_one("#tabs").active = "tab-table1"
        await pilot.pause(0.5)
        app.save_screenshot(f"table1-{suffix}.svg", path=str(OUT))
        app.screen.query_one("#tabs").active = "tab-runs"
        await pilot.pause(0.3)
        app.screen.query_one("#runs").focus()
        await pilot.press("enter")
        await pilot.pause(0.8)
        app.save_screenshot(f"run-detail-{suffix}.svg", path=str(OUT))
        await pilot.press("escape", "f1")
        await pilot.pause(0.5)
        app.save_screenshot(f"help-{suffix}.svg", path=str(OUT))


def main() -> None:
    from mpt_engine.launch import local_grid, run_grid
    from mpt_engine.store import RunStore

    home = tempfile.mkdtemp(prefix="mpt-screens-")
    os.environ.update(MPT_HOME=home, XDG_STATE_HOME=os.path.join(home, "state"))
    if DATA.is_dir():
        os.environ["MPT_DATA_DIR"] = str(DATA)
    grid = local_grid("smoke", {"method": ["sp", "mpt"], "seed": [1, 2], "epochs": [4]})
    for _ in run_grid(grid, RunStore()):
        pass
    OUT.mkdir(exist_ok=True)
    for seed, size in enumerate(((80, 24), (160, 48)), start=3):
        asyncio.run(shoot(size, seed))
    print(f"wrote {len(list(OUT.glob('*.svg')))} screenshots to {OUT}")


if __name__ == "__main__":
    main()

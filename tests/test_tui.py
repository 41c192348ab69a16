"""The Textual app driven by the Pilot: launching, watching, cancelling, browsing, exporting."""

import asyncio
import json
import time

import pytest
from textual.widgets import Button, DataTable, Input, Label, Select, SelectionList

from mpt_engine.config import build_config
from mpt_engine.runner import execute
from mpt_engine.store import RunStore
from mpt_tui.app import MptApp
from mpt_tui.screens.export import ExportScreen
from mpt_tui.screens.help import HelpScreen
from mpt_tui.screens.live import LiveScreen
from mpt_tui.screens.run_detail import RunDetailScreen
from mpt_tui.widgets.accuracy_grid import AccuracyGrid
from mpt_tui.widgets.loss_plot import LossPlot

SIZE = (100, 32)


@pytest.fixture(autouse=True)
def state_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


async def wait_for(pilot, condition, timeout=90.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.2)


async def fill_smoke_form(pilot, app, epochs="2"):
    screen = app.screen
    screen.query_one("#preset", Select).value = "smoke"
    screen.query_one("#methods", SelectionList).select("mpt")
    screen.query_one("#shots", SelectionList).select(4)
    screen.query_one("#field-epochs", Input).value = epochs
    screen.query_one("#field-seed", Input).value = "1"
    await pilot.pause()


def stored_run(run_id):
    return RunStore().folder(run_id)


async def test_invalid_values_are_flagged_inline():
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        alpha = app.screen.query_one("#field-alpha", Input)
        alpha.focus()
        await pilot.press(*"1.5")
        error = app.screen.query_one("#error-alpha", Label)
        assert "alpha must be" in str(error.render())
        assert alpha.has_class("invalid") and error.has_class("visible")
        assert app.screen.query_one("#launch", Button).disabled
        await pilot.press("ctrl+r")  # launching a bad form does nothing
        assert app.current_mode == "launch" and not app.runs
        alpha.value = "0.3"
        await pilot.pause()
        assert not alpha.has_class("invalid")
        app.screen.query_one("#field-seed", Input).value = "1-x"
        await pilot.pause()
        assert "expected integers" in str(app.screen.query_one("#error-seed", Label).render())


async def test_launch_a_smoke_run_and_watch_it():
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        await fill_smoke_form(pilot, app)
        plan = str(app.screen.query_one("#plan").render())
        assert "1 run ·" in plan and "1 to run" in plan
        await pilot.press("ctrl+r")
        assert app.current_mode == "live"
        (run,) = app.runs.values()
        await wait_for(pilot, lambda: len(run.steps) >= 2)
        plot = app.screen.query_one(LossPlot)
        await wait_for(pilot, lambda: plot.drawn_steps >= 2)
        await wait_for(pilot, lambda: run.status == "finished")
        await pilot.pause(0.6)
        grid = app.screen.query_one(AccuracyGrid)
        assert len(grid.per_language) == 15 and grid.average == pytest.approx(run.average)
        queue = app.screen.query_one("#queue", DataTable)
        assert str(queue.get_cell(run.run_id, "status")) == "finished"
        assert (stored_run(run.run_id) / "result.json").is_file()
        await wait_for(pilot, lambda: app.pool is None)


async def start_a_long_run(pilot, app):
    """Launch a smoke run long enough to act on; return it and its child process."""
    await fill_smoke_form(pilot, app, epochs="200")
    await pilot.press("ctrl+r")
    (run,) = app.runs.values()
    await wait_for(pilot, lambda: len(run.steps) >= 1)
    return run, app.pool.active[0].process


async def test_cancel_stops_the_child_and_leaves_the_run_incomplete():
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        run, process = await start_a_long_run(pilot, app)
        await pilot.press("c")
        await wait_for(pilot, lambda: app.pool is None, timeout=60)
        assert process.poll() is not None  # the child is gone
        assert run.status == "interrupted"
        folder = stored_run(run.run_id)
        assert not (folder / "result.json").exists()
        last = json.loads((folder / "events.jsonl").read_text().splitlines()[-1])
        assert (last["event"], last["status"]) == ("run_failed", "interrupted")


async def test_quitting_leaves_no_child_behind():
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        _, process = await start_a_long_run(pilot, app)
        await pilot.press("q")
    await asyncio.sleep(0)
    assert process.poll() is not None


@pytest.fixture
def finished_runs():
    for seed in (1, 2):
        config = build_config("smoke", {"method": "sp", "seed": seed, "epochs": 1}, environ={})
        for _ in execute(config, RunStore()):
            pass
    return sorted(p.name for p in RunStore().root.iterdir())


async def test_results_browser_opens_a_finished_run(finished_runs):
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        table = app.screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        await pilot.press("enter")
        assert isinstance(app.screen, RunDetailScreen)
        grid = app.screen.query_one(AccuracyGrid)
        assert len(grid.per_language) == 15
        assert app.screen.query_one(LossPlot).drawn_steps > 0
        await pilot.press("escape")
        assert app.screen.query_one("#runs", DataTable)


async def test_filter_and_table_one_and_export(finished_runs, tmp_path):
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        runs = app.screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: runs.row_count == 2)
        app.screen.query_one("#filter", Input).value = "seed=2"
        await pilot.pause()
        assert runs.row_count == 1
        app.screen.query_one("#filter", Input).value = ""
        await pilot.pause()
        app.screen.query_one("#tabs").active = "tab-table1"
        await pilot.pause()
        table1 = app.screen.query_one("#table1", DataTable)
        assert table1.row_count == 1
        await pilot.press("e")
        assert isinstance(app.screen, ExportScreen)
        target = tmp_path / "table.md"
        app.screen.query_one("#export-format", Select).value = "md"
        await pilot.pause()
        app.screen.query_one("#export-path", Input).value = str(target)
        await pilot.click("#export-write")
        await pilot.pause()
        assert not isinstance(app.screen, ExportScreen)
        text = target.read_text()
        assert "| Shots | Method | Seeds |" in text and "| 4 | SP | 2 |" in text


async def test_launcher_remembers_the_last_selection(finished_runs):
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await fill_smoke_form(pilot, app, epochs="1")
        screen.query_one("#methods", SelectionList).deselect("mpt")
        screen.query_one("#methods", SelectionList).select("sp")
        screen.query_one("#field-seed", Input).value = "1-2"
        await pilot.pause()
        assert "0 to run" in str(screen.query_one("#plan").render())  # both seeds are finished
        screen.action_launch()  # nothing to train: says so, and remembers the form
        await pilot.pause()
    again = MptApp()
    async with again.run_test(size=SIZE):
        screen = again.screen
        assert screen.query_one("#field-seed", Input).value == "1-2"
        assert screen.query_one("#preset", Select).value == "smoke"
        assert screen.query_one("#methods", SelectionList).selected == ["sp"]


async def test_help_screen_and_modes():
    app = MptApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("f3")
        assert isinstance(app.screen, LiveScreen)
        await pilot.press("f2")
        assert app.current_mode == "launch"


async def test_submit_to_slurm_follow_and_cancel(monkeypatch, slurm):
    import subprocess

    monkeypatch.setenv("SLURM_CONF", slurm)
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        await fill_smoke_form(pilot, app, epochs="5000")
        app.screen.query_one("#field-seed", Input).value = "1-2"
        app.screen.query_one("#executor", Select).value = "slurm"
        await pilot.pause()
        gpus = app.screen.query_one("#gpus", Input)
        gpus.value = "x"
        await pilot.pause()
        assert gpus.has_class("invalid")  # a count of GPUs per run, not a list
        gpus.value = "0"
        await pilot.pause()
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(app.runs) == 2, timeout=30)
        await wait_for(
            pilot, lambda: any(r.status == "running" for r in app.runs.values()), timeout=60
        )
        await wait_for(pilot, lambda: any(r.steps for r in app.runs.values()), timeout=60)
        assert isinstance(app.screen, LiveScreen)
        await pilot.press("c")
        await wait_for(
            pilot,
            lambda: (
                not subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip()
            ),
            timeout=60,
        )
        await wait_for(
            pilot, lambda: all(r.status not in ("pending", "running") for r in app.runs.values())
        )
        assert not list(RunStore().root.glob("*/result.json"))

"""The Textual app driven by the Pilot: launching, watching, cancelling, browsing, exporting."""

import asyncio
import contextlib
import csv
import json
import os
import re
import time
from pathlib import Path

import pytest
from textual.geometry import Region
from textual.widgets import Button, DataTable, Input, ProgressBar, Select, SelectionList, Static

from mpt_engine.presets import build_config
from mpt_engine.results import read_run
from mpt_engine.run_state import RunState
from mpt_engine.runner import execute
from mpt_engine.store import RunStore
from mpt_tui.app import MptApp
from mpt_tui.screens.confirm import ConfirmScreen
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


async def open_results(pilot, app, rows=2):
    """The results screen, once its runs list shows `rows` runs."""
    await pilot.press("f4")
    table = app.screen.query_one("#runs", DataTable)
    await wait_for(pilot, lambda: table.row_count == rows)
    return table


def stored_run(run_id):
    return RunStore().folder(run_id)


async def test_invalid_values_are_flagged_in_the_field_and_said_in_the_launch_bar():
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        alpha = app.screen.query_one("#field-alpha", Input)
        alpha.focus()
        await pilot.press(*"1.5")
        plan = app.screen.query_one("#plan")
        assert "alpha must be" in str(plan.render())
        assert alpha.has_class("invalid") and alpha.size.height == 1  # the value stays visible
        assert app.screen.query_one("#launch", Button).disabled
        await pilot.press("ctrl+r")  # launching a bad form does nothing
        assert app.current_mode == "launch" and not app.runs
        alpha.value = "0.3"
        await pilot.pause()
        assert not alpha.has_class("invalid")
        app.screen.query_one("#field-seed", Input).value = "x,1"
        app.screen.query_one("#field-aux_size", Input).value = "-5"
        await pilot.pause()
        said = str(plan.render())  # every bad field, in the form's words, not as options
        assert "seeds 'x,1': expected integers" in said and "aux size must be at least 1" in said
        assert "--" not in said


async def test_a_field_fine_alone_but_not_with_the_others_is_marked_by_the_plan():
    """The engine's error names the field (prompt length against max length); the launcher
    marks that field and says the problem in its labels, and unmarks it once fixed."""
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        await fill_smoke_form(pilot, app)
        prompt = app.screen.query_one("#field-prompt_length", Input)
        prompt.value = "40"
        app.screen.query_one("#field-max_length", Input).value = "32"
        await pilot.pause()
        said = str(app.screen.query_one("#plan").render())
        assert "prompt length 40 leaves no room" in said and "{" not in said
        assert prompt.has_class("plan-invalid") and not prompt.has_class("invalid")
        prompt.value = "4"
        await pilot.pause()
        assert not prompt.has_class("plan-invalid")
        assert not app.screen.query_one("#launch", Button).disabled


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


async def test_runs_per_gpu_trains_a_launch_in_shared_workers():
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        await fill_smoke_form(pilot, app, epochs="1")
        app.screen.query_one("#field-seed", Input).value = "1,2"
        workers = app.screen.query_one("#runs-per-gpu", Input)
        workers.value = "0"
        await pilot.pause()
        assert workers.has_class("invalid")
        assert "runs per GPU 0: expected 1 or more" in str(app.screen.query_one("#plan").render())
        workers.value = "2"
        await pilot.pause()
        assert not workers.has_class("invalid")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.pool is not None)
        assert app.pool.slots == [None, None]  # two workers sharing the CPU
        await wait_for(pilot, lambda: all(r.status == "finished" for r in app.runs.values()))
        assert len(app.runs) == 2


async def start_a_long_run(pilot, app):
    """Launch a smoke run long enough to act on; return it and its child process."""
    await fill_smoke_form(pilot, app, epochs="200")
    await pilot.press("ctrl+r")
    (run,) = app.runs.values()
    await wait_for(pilot, lambda: len(run.steps) >= 1)
    return run, app.pool.workers[0].process


async def test_cancel_asks_then_stops_the_child_and_leaves_the_run_incomplete():
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        run, process = await start_a_long_run(pilot, app)
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # keep going
        await pilot.pause(1.0)
        assert isinstance(app.screen, LiveScreen) and process.poll() is None
        assert run.status == "running"
        await pilot.press("c")
        await pilot.press("y")
        await wait_for(pilot, lambda: app.pool is None, timeout=60)
        assert process.poll() is not None  # the child is gone
        assert run.status == "interrupted"
        progress = app.screen.query_one(ProgressBar)
        assert progress.percentage is not None  # a still bar, not the pulse of a working one
        folder = stored_run(run.run_id)
        assert not (folder / "result.json").exists()
        last = json.loads((folder / "events.jsonl").read_text().splitlines()[-1])
        assert (last["event"], last["status"]) == ("run_failed", "interrupted")


async def test_quitting_while_training_asks_and_leaves_no_child_behind():
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        _, process = await start_a_long_run(pilot, app)
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")  # keep going
        await pilot.pause(1.0)
        assert app.return_code is None and process.poll() is None
        await pilot.press("q", "enter")
        await pilot.pause()
        assert app.return_code == 0
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
    async with app.run_test(size=(100, 30)) as pilot:
        await open_results(pilot, app)
        await pilot.press("enter")
        assert isinstance(app.screen, RunDetailScreen)
        grid = app.screen.query_one(AccuracyGrid)
        assert len(grid.per_language) == 15
        shown = grid.render_lines(Region(0, 0, grid.size.width, grid.size.height))
        last_row = shown[-1].text.split()  # nothing clipped: all 8 values, the average last
        assert len(last_row) == 8 and last_row[-1] == f"{grid.average:.1f}"
        settings = app.screen.query_one("#settings", DataTable)
        assert settings.virtual_size.width <= settings.size.width
        rows = map(settings.get_row_at, range(settings.row_count))
        started = next(value for key, value in rows if key == "started_at")
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", started)  # to the minute
        assert app.screen.query_one(LossPlot).drawn_steps > 0
        await pilot.press("escape")
        assert app.screen.query_one("#runs", DataTable)


async def test_filter_and_table_one_and_export(finished_runs, tmp_path, monkeypatch):
    app = MptApp()
    said = []
    monkeypatch.setattr(app, "notify", lambda message, **_: said.append(message))
    monkeypatch.chdir(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        runs = app.screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: runs.row_count == 2)
        app.screen.query_one("#filter", Input).value = "seed=2"
        await pilot.pause()
        assert runs.row_count == 1
        app.screen.query_one("#filter", Input).value = "seed=2-1"  # no rows it did not select
        await pilot.pause()
        note = str(app.screen.query_one("#runs-note", Static).render())
        assert runs.row_count == 0 and note.startswith("filter: seed='2-1'"), note
        app.screen.query_one("#filter", Input).value = ""
        await pilot.pause()
        app.screen.query_one("#tabs").active = "tab-table1"
        await pilot.pause()
        table1 = app.screen.query_one("#table1", DataTable)
        assert table1.row_count == 1
        await pilot.press("e")
        assert isinstance(app.screen, ExportScreen)
        offered = Path(app.screen.query_one("#export-path", Input).value)
        assert offered == Path(os.environ["MPT_HOME"], "exports", "mpt-table1.csv")  # not cwd
        target = tmp_path / "table.md"
        app.screen.query_one("#export-format", Select).value = "md"
        await pilot.pause()
        app.screen.query_one("#export-path", Input).value = "table.md"  # a relative path: cwd
        await pilot.click("#export-write")
        await pilot.pause()
        assert not isinstance(app.screen, ExportScreen)
        assert said[-1] == f"wrote {target}"  # where it went, in full
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
        assert not app.screen.query_one(ProgressBar).display  # nothing to show progress of
        footer = [active.binding.description for active in app.active_bindings.values()]
        assert "Runs" not in footer and "Quit" in footer  # the screen in view has no key there
        await pilot.press("f2")
        assert app.current_mode == "launch"
        await pilot.press("q")  # nothing trains: no question
        await pilot.pause()
        assert app.return_code == 0


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
        await pilot.press("c", "y")
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


@pytest.mark.parametrize("data", ["synthetic", "local"])
async def test_a_preset_says_what_it_runs(data, request, monkeypatch):
    if data == "local":  # MPT_DATA_DIR: the preset's runs read the local files
        monkeypatch.setenv("MPT_DATA_DIR", str(request.getfixturevalue("shared_data")))
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        summary = app.screen.query_one("#preset-summary")
        assert not summary.display
        app.screen.query_one("#preset", Select).value = "smoke"
        await pilot.pause()
        assert summary.display
        said = str(summary.render())
        assert said == f"smoke: sp, mpt × k=4 × seeds 1,2 — tiny model, {data} data, 3 epochs"
        assert "4 runs" in str(app.screen.query_one("#plan").render())


async def test_sort_key_sorts_the_runs_by_the_column_under_the_cursor(finished_runs):
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        table = await open_results(pilot, app)
        assert "s" in app.active_bindings  # in the footer
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert {"Sort runs", "Filter runs", "Export table", "Open run", "Remove run"} <= set(titles)

        def seeds():
            return [str(table.get_row_at(row)[3]) for row in range(table.row_count)]

        await pilot.press("right", "right", "right")  # run, method, shots, seed
        await pilot.press("s")
        assert seeds() == ["1", "2"] and str(table.ordered_columns[3].label) == "seed ▲"
        await pilot.press("s")
        assert seeds() == ["2", "1"] and str(table.ordered_columns[3].label) == "seed ▼"
        app.screen.query_one("#tabs").active = "tab-table1"
        await pilot.pause()
        assert "s" not in app.active_bindings  # report tables keep their order


async def test_a_run_that_did_not_train_shows_a_still_progress_bar():
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        app.runs["failed-run"] = RunState("failed-run", status="failed", error="no data")
        await pilot.press("f3")
        await pilot.pause(0.6)
        progress = app.screen.query_one(ProgressBar)
        assert progress.display and progress.percentage == 0


def test_plots_tick_whole_steps_and_epochs():
    from mpt_engine.figures import Panel, Series
    from mpt_tui.plots import integer_ticks, render_panel

    epochs = Panel("dev", "epoch", "accuracy", series=[Series("dev", [1, 2], [40.0, 42.0])])
    assert integer_ticks(epochs, 60) == [1, 2]
    assert "1.50" not in render_panel(epochs, 60, 12).plain
    steps = Panel(
        "losses", "step", "loss", series=[Series("total", list(range(1, 1238)), [1.0] * 1237)]
    )
    assert integer_ticks(steps, 60) == [200, 400, 600, 800, 1000, 1200]


async def test_runs_another_grid_trains_are_followed_and_finished(monkeypatch):
    """A CLI grid on the same store holds the runs when the app's children reach them: the app
    follows them from the store, and what that grid finishes is finished, not 'skipped'."""
    from mpt_engine.launch import local_grid, run_grid

    lists = {"method": ["sp"], "seed": [1, 2], "epochs": [1]}
    configs = local_grid("smoke", lists, environ={})  # the ids the app's children train
    store = RunStore()
    app = MptApp()
    said = []
    async with app.run_test(size=SIZE) as pilot:
        monkeypatch.setattr(app, "notify", lambda message, **_: said.append(message))
        with contextlib.ExitStack() as other_grid:  # the other grid's claims
            for config in configs:
                assert other_grid.enter_context(store.claim(config.run_id))
            app.launch(configs)
            await wait_for(pilot, lambda: any(m.startswith("queue done") for m in said))
            assert [run.status for run in app.runs.values()] == ["running", "running"]
            assert said[-1] == "queue done: 0 of 2 runs finished; 2 training in another process"
        await asyncio.to_thread(lambda: list(run_grid(configs, store)))  # the other grid trains
        await wait_for(pilot, lambda: all(run.status == "finished" for run in app.runs.values()))
        for run in app.runs.values():
            assert len(run.per_language) == 15 and run.average is not None


async def test_a_run_without_result_json_is_not_finished_in_its_detail(finished_runs):
    folder = stored_run(finished_runs[0])
    (folder / "result.json").unlink()  # killed after its result event, before result.json
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        table = await open_results(pilot, app)
        app.push_screen(RunDetailScreen(read_run(folder)))
        await pilot.pause()
        title = str(app.screen.query_one("#detail-title").render())
        assert "incomplete" in title and "finished" not in title and "average" not in title
        statuses = {str(table.get_row_at(row)[5]) for row in range(table.row_count)}
        assert statuses == {"incomplete", "finished"}  # the same words in the list


async def test_a_bad_result_file_does_not_stop_the_results_screen(finished_runs):
    folder = stored_run(finished_runs[0])
    result = json.loads((folder / "result.json").read_text())
    (folder / "result.json").write_text(json.dumps(result | {"average": "high"}))
    app = MptApp()
    said = []
    app.notify = lambda message, **_: said.append(message)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        table = app.screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        app.screen.query_one("#tabs").active = "tab-table1"
        await pilot.pause()
        assert app.screen.query_one("#table1", DataTable).row_count == 1
    assert app.return_code in (None, 0) and any("average" in message for message in said)


@pytest.mark.parametrize(
    "content",
    [b"[1, 2]", b"\xff\xfe not utf-8", b'{"shots": "abc,4", "methods": "sp,bert"}', b"{"],
)
async def test_a_malformed_state_file_is_ignored_with_a_notice(tmp_path, content):
    state = tmp_path / "state" / "mpt"
    state.mkdir(parents=True)
    (state / "launcher.json").write_bytes(content)
    app = MptApp()
    said = []
    app.notify = lambda message, **_: said.append(message)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.current_mode == "launch"
        shots = app.screen.query_one("#shots", SelectionList).selected
        assert shots in ([], [4])  # what could be read of it, and nothing else
    assert app.return_code in (None, 0)
    assert content.startswith(b'{"') or any("ignored" in message for message in said)


async def test_runs_trained_headless_appear_in_the_results_and_the_plan(monkeypatch):
    """The store index follows runs another process trains: the results list gains them and
    the launcher's plan counts them finished, with no keystroke; the store is not reread when
    nothing changed."""
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        await fill_smoke_form(pilot, app, epochs="1")
        plan = app.screen.query_one("#plan")
        assert "0 finished" in str(plan.render())
        config = build_config("smoke", {"method": "mpt", "epochs": 1, "seed": 1}, environ={})
        await asyncio.to_thread(lambda: list(execute(config, RunStore())))  # "mpt run" elsewhere
        await wait_for(pilot, lambda: "1 finished" in str(plan.render()), timeout=10)
        await pilot.press("f4")
        table = app.screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, timeout=10)
        reads = []
        monkeypatch.setattr("mpt_engine.results.ParsedRuns.read", lambda *a: reads.append(a))
        await pilot.pause(2.5)  # two polls of an unchanged store
        assert reads == [] and table.row_count == 1


async def test_a_run_is_removed_from_the_results_after_a_confirmation(finished_runs):
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        table = await open_results(pilot, app)
        table.focus()
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # keep it
        await pilot.pause()
        assert all(stored_run(run_id).is_dir() for run_id in finished_runs)
        await pilot.press("d")
        await pilot.press("y")
        await wait_for(pilot, lambda: table.row_count == 1, timeout=10)
        assert sum(stored_run(run_id).is_dir() for run_id in finished_runs) == 1


async def test_escape_leaves_a_text_field_for_the_screens_main_widget(finished_runs):
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await pilot.press("slash")
        assert isinstance(app.focused, Input) and app.focused.id == "filter"
        await pilot.press("escape")
        assert app.focused.id == "runs"
        await pilot.press("f2")
        app.screen.query_one("#field-alpha", Input).focus()
        await pilot.press("escape")
        assert not isinstance(app.focused, Input)


async def test_a_run_started_in_another_terminal_shows_on_the_runs_screen_while_it_trains(
    monkeypatch,
):
    """`mpt run` elsewhere: the Runs screen lists it while it trains, follows it, and shows it
    finished; nothing was launched from the app. The run waits at its first step until the app
    has seen it training, so no machine is too fast for the test."""
    import threading

    from mpt_engine.methods import SoftPromptMethod

    seen, original = threading.Event(), SoftPromptMethod.loss

    def waiting(self, step):
        seen.wait(60)
        return original(self, step)

    monkeypatch.setattr(SoftPromptMethod, "loss", waiting)
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        config = build_config("smoke", {"method": "mpt", "epochs": 2, "seed": 4}, environ={})
        started = asyncio.get_running_loop().run_in_executor(
            None, lambda: list(execute(config, RunStore()))
        )
        queue = app.screen.query_one("#queue", DataTable)
        await wait_for(pilot, lambda: queue.row_count == 1, timeout=30)
        (run_id,) = app.runs
        assert not app.launched and app.screen.selected == run_id
        assert app.runs[run_id].status == "running"
        seen.set()
        events = await started
        await wait_for(pilot, lambda: app.runs[run_id].status == "finished", timeout=30)
        assert app.runs[run_id].average == pytest.approx(events[-1].average)


async def test_a_run_training_when_the_app_starts_is_on_the_runs_screen_at_once(monkeypatch):
    import threading

    from mpt_engine.methods import SoftPromptMethod

    release, original = threading.Event(), SoftPromptMethod.loss
    monkeypatch.setattr(
        SoftPromptMethod, "loss", lambda self, step: release.wait(60) and original(self, step)
    )
    config = build_config("smoke", {"method": "sp", "epochs": 1, "seed": 5}, environ={})
    events = iter(execute(config, RunStore()))
    started = next(events)  # run_started: the folder exists and its lock is held
    trained = asyncio.get_running_loop().run_in_executor(None, lambda: list(events))
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert list(app.runs) == [started.run_id]  # no store change needed to see it
        release.set()
        await trained


async def test_returning_to_the_results_never_lands_in_a_text_field(finished_runs):
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_results(pilot, app)
        app.screen.query_one("#tabs").active = "tab-compare"
        await pilot.pause()
        app.screen.query_one("#compare-a", Input).focus()
        await pilot.press("f2", "f4")
        await pilot.pause()
        assert app.focused.id == "compare"  # the table of the tab in view
        await pilot.press("e")
        assert app.screen.query_one("#compare-a", Input).value == ""  # e was not typed


async def test_a_long_runs_list_is_drawn_a_page_at_a_time_and_sorted_whole(tmp_path):
    from benchmarks.store_scale import build
    from mpt_tui.screens.results import PAGE_ROWS

    build(RunStore().home, PAGE_ROWS + 50)  # one smoke run, copied with seeds 2..250
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        table = await open_results(pilot, app, rows=PAGE_ROWS)
        note = app.screen.query_one("#runs-note")
        assert note.display and "runs 1–200 of 250" in str(note.render())
        assert "right_square_bracket" in app.active_bindings  # in the footer: next page
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: table.row_count == 50)
        assert "runs 201–250 of 250 · page 2 of 2" in str(note.render())
        await pilot.press("left_square_bracket")
        await wait_for(pilot, lambda: table.row_count == PAGE_ROWS)
        table.move_cursor(column=3)  # seed
        await pilot.press("s", "s")  # by seed, then the other way: over all 250 runs
        assert [str(table.get_row_at(row)[3]) for row in range(2)] == ["250", "249"]
        await pilot.press("e")  # the export keeps the order on screen
        target = tmp_path / "runs.csv"
        app.screen.query_one("#export-path", Input).value = str(target)
        await pilot.click("#export-write")
        await pilot.pause()
        rows = list(csv.DictReader(target.read_text().splitlines()))
        assert len(rows) == 250 and [row["Seed"] for row in rows[:3]] == ["250", "249", "248"]


async def test_a_collapsed_run_is_marked_in_the_runs_list_and_warned_of_in_its_detail(
    finished_runs,
):
    from mpt_engine.collapse import detect

    for run_id, answers in zip(finished_runs, ([1] * 10, [0, 1, 2] * 3), strict=True):
        path = stored_run(run_id) / "result.json"
        result = json.loads(path.read_text())
        collapse = detect(dict.fromkeys(result["per_language"], answers), ["e", "neutral", "c"])
        path.write_text(json.dumps(result | {"collapse": collapse.to_dict()}))
    app = MptApp()
    async with app.run_test(size=SIZE) as pilot:
        table = await open_results(pilot, app)
        averages = {table.get_row_at(row)[0]: str(table.get_row_at(row)[4]) for row in range(2)}
        assert averages[finished_runs[0]].endswith("†")
        assert not averages[finished_runs[1]].endswith("†")
        note = app.screen.query_one("#runs-note", Static)
        assert note.display and str(note.render()).startswith("† a collapsed run: one class took")
        app.push_screen(RunDetailScreen(read_run(stored_run(finished_runs[0]))))
        await pilot.pause()
        title = str(app.screen.query_one("#detail-title").render())
        assert "warning: collapsed: all of the test predictions are 'neutral'" in title

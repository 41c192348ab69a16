"""The engine never imports a user interface; `mpt --help` and the app start without torch."""

import subprocess
import sys

import pytest

ENGINE_MODULES = [
    "mpt_engine.backbone", "mpt_engine.checkpoint", "mpt_engine.config", "mpt_engine.data",
    "mpt_engine.device", "mpt_engine.encoding", "mpt_engine.evaluate", "mpt_engine.events",
    "mpt_engine.figures", "mpt_engine.grid", "mpt_engine.launch", "mpt_engine.losses",
    "mpt_engine.methods", "mpt_engine.model", "mpt_engine.modules", "mpt_engine.paws15",
    "mpt_engine.predict", "mpt_engine.prompts", "mpt_engine.record", "mpt_engine.reports",
    "mpt_engine.results", "mpt_engine.runner", "mpt_engine.stats", "mpt_engine.store",
    "mpt_engine.tables", "mpt_engine.token_cache", "mpt_engine.train", "mpt_engine.worker",
]  # fmt: skip


def imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return set(completed.stdout.split())


def test_engine_imports_no_user_interface():
    modules = imported_after("; ".join(f"import {name}" for name in ENGINE_MODULES))
    for forbidden in ("textual", "typer", "mpt_tui"):
        assert forbidden not in modules


@pytest.mark.parametrize("statement", ["import mpt_tui.cli", "import mpt_tui.app"])
def test_help_and_app_start_without_torch(statement):
    modules = imported_after(statement)
    for heavy in ("torch", "transformers", "datasets", "scipy", "matplotlib"):
        assert heavy not in modules, f"{statement} imports {heavy}"

"""The engine never imports a user interface; `mpt --help` and the app start without torch."""

import pkgutil
import subprocess
import sys

import pytest

import mpt_engine

# Every engine module, found rather than listed, so a new one is checked too.
ENGINE_MODULES = [
    module.name
    for module in pkgutil.walk_packages(mpt_engine.__path__, "mpt_engine.")
    if not module.name.endswith("__main__")
]


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

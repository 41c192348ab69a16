"""docs/api.md works as written: its Python blocks run in order, in one namespace."""

import re
from pathlib import Path

import pytest

API = Path(__file__).resolve().parents[1] / "docs" / "api.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def test_the_api_page_runs_as_written(capsys):
    pytest.importorskip("optuna")
    blocks = BLOCK.findall(API.read_text())
    assert len(blocks) == 4
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(API), "exec"), namespace)
    study, store = namespace["study"], namespace["store"]
    assert len(study.trials) == 3 and 0.0 <= study.best_value <= 100.0
    finished = [trial for trial in study.trials if trial.value is not None]
    assert len(finished) == 3
    stored = namespace["load_runs"](store)[0]
    assert len(stored) == 1 + len({tuple(trial.params.values()) for trial in study.trials})
    said = capsys.readouterr().out
    assert said.splitlines()[0] == namespace["config"].run_id
    assert "| 4 | MPT | 1 |" in said  # Table I of the first run, as markdown
    assert str(study.best_params) in said

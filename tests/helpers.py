"""Running the `mpt` console script inside the test process."""

import json
import os
from pathlib import Path

import pytest

from mpt_tui.cli import main


def mpt(capsys, *args):
    """Run `mpt ARGS`; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def mpt_json(capsys, *args):
    """Run a command that prints JSON (one document or NDJSON) and parse its stdout."""
    code, out, err = mpt(capsys, *args)
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("{") and lines[0].endswith("}"):
        return [json.loads(line) for line in lines]
    return json.loads(out)


def runs_dir() -> Path:
    return Path(os.environ["MPT_HOME"], "runs")

"""Run options are declared once, beside the config's fields: `mpt run`, `mpt grid`, the
launcher and the rerun line of `mpt results show` are all built from that declaration."""

import dataclasses
import os
import shlex
import subprocess
import sys
import textwrap

from mpt_engine.config import RunConfig, options
from mpt_engine.errors import InvalidInput
from mpt_engine.presets import build_config
from mpt_engine.store import RunStore
from mpt_tui.commands.options import flag, run_command
from tests.helpers import mpt, mpt_rows, write_colour_task

# A run that changes every option from its default (method mpt uses every field).
EVERY_FIELD_CHANGED = dict(
    method="mpt",
    shots=4,
    seed=7,
    model="tiny",
    data="local",
    task="colours.yaml",  # the test's own task file (tests.helpers.write_colour_task)
    split="sampled",
    prompt_length=2,
    position="prefix",
    translator="lstm-1",
    alpha=0.25,
    aux="xnli-dev",
    aux_size=100,
    epochs=3,
    batch_size=8,
    lr=1e-3,
    weight_decay=0.0,
    max_grad_norm=0.5,
    max_length=64,
    eval_batch_size=32,
    test_limit=10,
    precision="fp32",
)


def test_every_config_field_but_the_engines_own_is_an_option():
    offered = {spec.name for spec in options()}
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    assert fields - offered == {"data_digest"}  # set by the engine from the data's content
    assert set(EVERY_FIELD_CHANGED) == offered
    defaults = RunConfig().resolved().to_dict()
    changed = RunConfig(**EVERY_FIELD_CHANGED).resolved().to_dict()
    assert all(changed[name] != defaults[name] for name in offered - {"method", "shots"})


def test_the_rerun_line_of_a_run_that_changes_every_field_rebuilds_it(
    capsys, monkeypatch, tmp_path
):
    task = write_colour_task(tmp_path)
    monkeypatch.setenv("MPT_DATA_DIR", str(tmp_path))  # xnli-dev, the auxiliary corpus, is there
    values = EVERY_FIELD_CHANGED | {"task": str(task)}
    config = build_config(None, values)
    assert config.data_digest is not None  # the task file and its data, by content
    line = run_command(config.to_dict())
    assert all(flag(spec.name) in line for spec in options())

    def refuse(self, run_id):  # stop `mpt run` where it looks for the run: its id is known
        raise InvalidInput(f"looked for {run_id}")

    with monkeypatch.context() as patched:
        patched.setattr(RunStore, "result", refuse)
        code, _, err = mpt(capsys, *shlex.split(line)[1:])
    assert code == 2 and err.strip() == f"error: looked for {config.run_id}"
    (row,) = mpt_rows(capsys, "grid", *shlex.split(line)[2:], "--dry-run", "--json")
    assert row["run_id"] == config.run_id


ADDED_OPTION = """
    import dataclasses, sys
    from mpt_engine import config

    Base = config.RunConfig
    config.RunConfig = dataclasses.make_dataclass(
        "RunConfig",
        [("label_smoothing", float, config.option(
            "label smoothing of the CE loss", 0.0, panel=config.TRAINING, hint="e.g. 0.1"))],
        bases=(Base,),
        frozen=True,
    )
    from mpt_tui.cli import main
    from mpt_tui.commands.options import run_command
    from mpt_tui.screens.launcher import TEXT_FIELDS

    print("launcher:", [(spec.shown, spec.hint) for spec in TEXT_FIELDS][-1])
    values = config.RunConfig(model="tiny", label_smoothing=0.1).to_dict()
    print("rerun:", run_command(values))
    main([sys.argv[1], "--help"])
"""


def test_an_option_added_to_the_config_appears_in_every_front_end():
    """One new field, declared once, and nothing else changed: run --help, grid --help (as a
    list), the launcher's fields and the rerun line all offer it."""
    script = textwrap.dedent(ADDED_OPTION)
    environ = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    said = {}
    for command in ("run", "grid"):
        done = subprocess.run(
            [sys.executable, "-c", script, command], capture_output=True, text=True, env=environ
        )
        assert done.returncode == 0, done.stderr
        said[command] = done.stdout
    run_help, grid_help = said["run"], said["grid"]
    assert "--label-smoothing" in run_help and "label smoothing of the CE loss" in run_help
    assert "comma list: label smoothing of the CE loss" in grid_help
    assert "launcher: ('label smoothing', 'e.g. 0.1')" in run_help
    assert "--label-smoothing 0.1" in run_help.split("rerun:")[1].splitlines()[0]

"""The methods learn: on the easy synthetic task the loss falls and accuracy beats chance."""

import pytest

from mpt_engine.config import build_config
from mpt_engine.events import DevEvaluated, RunFinished, TrainStep
from mpt_engine.train import Trainer


@pytest.mark.parametrize("method", ["ft", "sp", "mpt"])
def test_loss_falls_and_accuracy_beats_chance(method):
    config = build_config(
        "smoke",
        {"method": method, "shots": 32, "epochs": 8, "batch_size": 16, "test_limit": 150},
        environ={},
    )
    events = list(Trainer(config).events())
    steps = [event for event in events if isinstance(event, TrainStep)]
    per_epoch = len(steps) // config.epochs
    first = sum(step.ce for step in steps[:per_epoch]) / per_epoch
    last = sum(step.ce for step in steps[-per_epoch:]) / per_epoch
    assert last < 0.8 * first
    dev = [event.accuracy for event in events if isinstance(event, DevEvaluated)]
    assert max(dev) > 50
    result = events[-1]
    assert isinstance(result, RunFinished)
    assert result.per_language["en"] > 45  # chance is 33.3

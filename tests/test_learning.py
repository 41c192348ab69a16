"""The methods learn: on the easy synthetic task the loss falls and accuracy beats chance."""

import pytest

from mpt_engine.events import DevEvaluated, RunFinished, TrainStep
from mpt_engine.presets import build_config
from mpt_engine.train import Trainer, parameter_groups


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


def test_no_weight_decay_on_biases_and_norms():
    trainer = Trainer(build_config("smoke", {"epochs": 1}, environ={}))
    trainer.setup()
    decayed, plain = parameter_groups(trainer.method.model, 0.01)
    assert decayed["weight_decay"] == 0.01 and plain["weight_decay"] == 0.0
    names = {id(p): name for name, p in trainer.method.model.named_parameters()}
    plain_names = {names[id(p)] for p in plain["params"]}
    assert any(name.endswith("LayerNorm.weight") for name in plain_names)
    assert any(name.endswith("lm_head.layer_norm.weight") for name in plain_names)
    assert all(p.ndim >= 2 for p in decayed["params"])
    all_parameters = list(trainer.method.model.parameters())
    assert len(decayed["params"]) + len(plain["params"]) == len(all_parameters)
    # AdamW holds the same two groups, the PLM's part of each in one flat parameter
    held = trainer.optimizer.param_groups
    assert [group["weight_decay"] for group in held] == [0.01, 0.0]
    for group, expected in zip(held, (decayed, plain), strict=True):
        assert sum(p.numel() for p in group["params"]) == sum(p.numel() for p in expected["params"])
        assert len(group["params"]) < len(expected["params"])

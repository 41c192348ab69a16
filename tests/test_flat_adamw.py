"""AdamW over flat parameters trains exactly as AdamW over the parameters one by one."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mpt_engine.errors import RunFailed
from mpt_engine.flat_adamw import FlatAdamW
from mpt_engine.presets import build_config
from mpt_engine.train import Trainer, parameter_groups


class Model(nn.Module):
    """A PLM stand-in (embedding, layers, norms, biases) and a part that gets no gradient."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.plm = nn.Sequential(nn.Embedding(50, 8), nn.Linear(8, 8), nn.LayerNorm(8))
        self.head = nn.Linear(8, 3)
        self.unused = nn.Linear(8, 8)

    def forward(self, ids):
        return self.head(self.plm(ids)).mean(1)


def train(flat: bool, steps: int = 6) -> Model:
    model = Model()
    groups = parameter_groups(model, 0.1)
    if flat:
        optimizer = FlatAdamW(groups, model.plm.parameters(), lr=0.05, fused=True)
        assert optimizer.intact(model)
    else:
        optimizer = torch.optim.AdamW(groups, lr=0.05, fused=True)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        ids = torch.randint(0, 50, (4, 5), generator=generator)
        labels = torch.randint(0, 3, (4,), generator=generator)
        nn.functional.cross_entropy(model(ids), labels).backward()
        trained = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(trained, 0.5, foreach=True)  # clipping bites
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if flat:
        assert optimizer.intact(model) and len(optimizer.flat) == 2  # decayed and plain
    return model


def test_flat_parameters_train_as_the_parameters_one_by_one():
    flat, plain = train(flat=True), train(flat=False)
    for (name, ours), (_, theirs) in zip(
        flat.named_parameters(), plain.named_parameters(), strict=True
    ):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6, msg=name)
    untouched = Model().unused
    assert torch.equal(flat.unused.weight, untouched.weight)  # no gradient: never updated
    assert flat.unused.weight.grad is None


def test_the_gradients_are_views_of_one_buffer_and_are_zeroed_in_place():
    model = Model()
    groups = parameter_groups(model, 0.1)
    optimizer = FlatAdamW(groups, model.plm.parameters(), lr=0.05)
    decayed = optimizer.flat[0]
    embedding = model.plm[0].weight
    assert embedding.grad.data_ptr() == decayed.grad.data_ptr()  # the first of the group
    model(torch.tensor([[1, 2, 3]])).sum().backward()
    assert decayed.grad.abs().sum() > 0 and embedding.grad[1].abs().sum() > 0
    optimizer.zero_grad()
    assert decayed.grad.abs().sum() == 0 and embedding.grad is optimizer.views[0][1]
    assert model.head.weight.grad is None  # outside the buffers: set to None as usual


def test_intact_sees_a_parameter_replaced_or_a_gradient_dropped():
    for breaks in (
        lambda model: model.load_state_dict(model.state_dict(), assign=True),
        lambda model: model.zero_grad(set_to_none=True),
        lambda model: model.to(torch.float64),
    ):
        model = Model()
        optimizer = FlatAdamW(parameter_groups(model, 0.1), model.plm.parameters(), lr=0.05)
        assert optimizer.intact(model)
        breaks(model)
        assert not optimizer.intact(model)


def test_a_parameter_moved_away_from_the_buffers_is_caught(monkeypatch):
    """If anything sets the PLM's gradients to None (model.zero_grad) or moves it, AdamW would
    update buffers the model no longer reads: the run fails at the end of the epoch instead of
    silently learning nothing."""
    trainer = Trainer(build_config("smoke", {"epochs": 1}, environ={}))
    trainer.setup()
    assert trainer.optimizer.intact(trainer.method.model)
    step = Trainer.autocast

    def autocast_then_break(self):
        self.method.model.zero_grad(set_to_none=True)  # a bug of this kind
        return step(self)

    monkeypatch.setattr(Trainer, "autocast", autocast_then_break)
    with pytest.raises(RunFailed, match="left AdamW's buffers"):
        list(trainer.events())


def test_a_checkpoint_of_flat_parameters_saves_each_tied_weight_once(tmp_path):
    """safetensors saves no view: the checkpoint holds copies, the tied embedding once."""
    from safetensors.torch import load_file

    from mpt_engine.checkpoint import owned_state, save

    trainer = Trainer(build_config("smoke", {"epochs": 1}, environ={}))
    trainer.setup()
    model = trainer.method.model
    dense = model.masked_lm.lm_head.dense.weight
    assert dense.untyped_storage().nbytes() > dense.numel() * dense.element_size()  # a view
    state = owned_state(model)
    tied = [name for name in state if name.endswith(("word_embeddings.weight", "decoder.weight"))]
    assert len(tied) == 1
    assert all(t.untyped_storage().nbytes() == t.numel() * t.element_size() for t in state.values())
    save(trainer.method, trainer.tokenizer, tmp_path / "checkpoint")
    saved = load_file(tmp_path / "checkpoint" / "model.safetensors")
    assert saved.keys() == state.keys()
    current = model.state_dict()
    assert all(torch.equal(saved[name], current[name]) for name in saved)
    # tests/test_predict.py loads such checkpoints into fresh models: the run's predictions


def test_tied_and_large_parameters_stay_whole(monkeypatch):
    from mpt_engine import flat_adamw

    model = Model()
    decoder = nn.Linear(8, 50, bias=False)
    decoder.weight = model.plm[0].weight  # tied to the embedding, as an LM head's decoder
    model.decoder = decoder
    monkeypatch.setattr(flat_adamw, "LARGEST", 32)  # elements
    chosen = {id(p) for p in flat_adamw.flattenable(model)}
    assert id(model.plm[0].weight) not in chosen  # tied
    assert id(model.plm[1].weight) not in chosen  # 64 elements
    assert id(model.head.weight) in chosen and id(model.head.bias) in chosen  # 24 and 3

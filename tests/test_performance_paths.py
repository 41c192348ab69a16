"""The fast paths compute what the slow ones do: the baselines' way (static padding, logits at
every position over the whole vocabulary, batch 4) gives the same logits and accuracies; the
token cache gives the same ids; bf16 autocast runs end to end."""

import contextlib
import dataclasses
import math
import shutil

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks import reference
from mpt_engine.config import RunConfig
from mpt_engine.data import load_task_data
from mpt_engine.device import bf16_problem
from mpt_engine.encoding import collate
from mpt_engine.evaluate import eval_batches, predict_batched, predict_labels
from mpt_engine.methods import build_method
from mpt_engine.paths import cache_dir
from mpt_engine.presets import build_config
from mpt_engine.token_cache import MIN_TEXTS, tokenize, tokenizer_fingerprint
from mpt_engine.train import Trainer, build_optimizer, compile_model, training_step
from tests.helpers import mpt, runs_dir


@pytest.fixture(scope="module")
def method_and_data(tokenizer):
    data = load_task_data(RunConfig(data="synthetic", aux_size=16, test_limit=40, shots=4))
    torch.manual_seed(0)
    config = RunConfig(model="tiny", data="synthetic", aux_size=16, batch_size=8).resolved()
    method = build_method(config, tokenizer, data)
    method.model.eval()
    return method, data


@pytest.mark.parametrize("language", ["en", "de", "zh"])
def test_same_accuracy_as_the_baselines_way(method_and_data, language):
    method, data = method_and_data
    examples = data.test[language]
    ours = predict_labels(method, examples, language, batch_size=256, device="cpu")
    theirs = reference.predict(method, method.encode(examples, language), language, "cpu")

    def accuracy(predicted):
        return np.mean([p == e.label for p, e in zip(predicted, examples, strict=True)])

    assert abs(accuracy(ours) - accuracy(theirs)) <= 1e-4
    assert ours == theirs


def test_mask_logits_equal_full_logits_at_every_position(method_and_data):
    method, data = method_and_data
    encoded = method.encode(data.test["fr"][:8], "fr")
    prompt = method.model.target_prompt()
    with torch.no_grad():
        ours = method.model(collate(encoded, method.pad_id), prompt)
        theirs = reference.vocabulary_logits(
            method.model, reference.static_batch(encoded, method.pad_id, "cpu"), prompt
        )
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_token_cache_returns_the_tokenizers_ids(tokenizer):
    texts = [f"the farmer sees {n} houses today" for n in range(MIN_TEXTS + 10)]
    expected = tokenizer(texts, add_special_tokens=False)["input_ids"]
    key = tokenizer_fingerprint(tokenizer)
    assert tokenize(tokenizer, texts, key) == expected  # computed and stored
    stored = list((cache_dir() / "tokens").glob("*.npz"))
    assert stored
    assert tokenize(tokenizer, texts, key) == expected  # read back
    for path in stored:
        path.write_bytes(b"damaged")
    assert tokenize(tokenizer, texts, key) == expected  # a damaged file is rebuilt


def test_evaluation_batch_size_is_not_part_of_a_runs_identity():
    assert RunConfig(eval_batch_size=8).run_id == RunConfig(eval_batch_size=512).run_id
    assert RunConfig(precision="bf16").run_id != RunConfig(precision="fp32").run_id


def test_bf16_autocast_runs_end_to_end():
    problem = bf16_problem("cpu")
    if problem is not None:
        pytest.skip(f"bf16 autocast does not run on this CPU: {problem}")
    config = build_config("smoke", {"precision": "bf16", "epochs": 1, "test_limit": 30}, environ={})
    trainer = Trainer(config)
    events = list(trainer.events())
    assert trainer.precision.value == "bf16"
    assert len(events[-1].per_language) == 15


def test_vocabulary_logits_stay_float32_under_bf16_autocast(method_and_data):
    method, _ = method_and_data
    hidden = 30 * torch.randn(6, method.backbone.config.hidden_size)
    head = method.model.head
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features = head.transform(hidden)  # bf16 under autocast, as in training
        logits = head(hidden)
        rounded = head.projection(features)  # the projection left to autocast
    exact = torch.nn.functional.linear(
        features.float(), head.projection.weight, head.projection.bias
    )
    assert logits.dtype == torch.float32 and rounded.dtype == torch.bfloat16
    assert torch.allclose(logits, exact, atol=1e-5)
    assert not torch.allclose(rounded.float(), exact, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        label_rows = head(hidden, method.label_ids)
    assert torch.allclose(label_rows, exact[:, method.label_ids], atol=1e-5)


@pytest.fixture
def cpu_without_bf16(monkeypatch):
    """A CPU whose oneDNN has no bf16 LSTM (an AVX2 EPYC): the LSTM fails under autocast."""
    from mpt_engine import device

    forward = torch.nn.LSTM.forward

    def failing_forward(self, *args, **kwargs):
        if torch.is_autocast_enabled("cpu"):
            raise RuntimeError(
                "could not create a primitive descriptor for the LSTM forward propagation "
                "primitive. Run workload with environment variable ONEDNN_VERBOSE=all"
            )
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.LSTM, "forward", failing_forward)
    device._bf16_problem.cache_clear()  # the probe's answer is cached per process
    yield
    device._bf16_problem.cache_clear()


def test_the_probe_finds_a_cpu_without_bf16(cpu_without_bf16):
    assert "LSTM forward propagation" in bf16_problem("cpu")


def test_bf16_on_a_cpu_without_it_fails_before_the_run(capsys, cpu_without_bf16):
    code, out, err = mpt(capsys, "run", "--preset", "smoke", "--precision", "bf16")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "error: --precision bf16 is not supported on this cpu (could not create a primitive "
        "descriptor for the LSTM forward propagation primitive. Run workload with environment "
        "variable ONEDNN_VERBOSE=all): use fp32"
    ]
    assert not runs_dir().exists() or not any(runs_dir().iterdir())


@pytest.mark.parametrize("method_name", ["mpt", "pct", "ft"])
def test_bucketed_batches_give_the_same_losses_and_predictions(tokenizer, method_name):
    """A compiled model's batches are padded on to a multiple of 32 tokens (Trainer.shape):
    padding is masked, so losses and predictions are those of the batch as it was."""
    data = load_task_data(RunConfig(data="synthetic", aux_size=16, test_limit=40, shots=4))
    torch.manual_seed(0)
    config = RunConfig(method=method_name, model="tiny", data="synthetic", aux_size=16)
    method = build_method(config.resolved(), tokenizer, data)
    method.model.eval()
    batch = next(iter(method.training_batches(torch.Generator().manual_seed(0))))
    bucketed = batch.bucketed(32, method.pad_id, config.max_length)
    assert batch.input_ids.shape[1] % 32 != 0 and bucketed.input_ids.shape[1] % 32 == 0
    assert (bucketed.input_ids[:, batch.input_ids.shape[1] :] == method.pad_id).all()
    with torch.no_grad():
        exact, padded = method.loss(batch), method.loss(bucketed)
    for name in ("total", "ce", "kl"):
        if getattr(exact, name) is not None:
            torch.testing.assert_close(getattr(padded, name), getattr(exact, name))
    test = collate(method.encode(data.test["de"], "de"), method.pad_id)
    assert torch.equal(
        method.predict(test.bucketed(32, method.pad_id, 512), "de"), method.predict(test, "de")
    )
    assert batch.bucketed(32, method.pad_id, batch.input_ids.shape[1]) is batch  # the limit


@pytest.mark.skipif(shutil.which("cc") is None, reason="torch.compile on a CPU needs a C compiler")
def test_a_worker_compiles_the_model_once(tmp_path, monkeypatch):
    """Runs after the first in one process (a worker: mpt grid --runs-per-gpu) reuse the
    compiled code: torch.compile traces no new graph for them."""
    from torch._dynamo.utils import counters

    from mpt_engine.warm import WarmCache

    monkeypatch.setenv("MPT_HOME", str(tmp_path))
    torch._dynamo.reset()
    cache = WarmCache()
    graphs = []
    for seed in (1, 2, 3):
        config = build_config("smoke", {"seed": seed, "epochs": 1, "test_limit": 30}, environ={})
        trainer = Trainer(config, "cpu", compile=True, warm=cache)
        finished = list(trainer.events())[-1]
        assert len(finished.per_language) == 15 and trainer.record()["compiled"] is True
        graphs.append(counters["stats"]["unique_graphs"])
    assert graphs[0] > 0 and graphs[1] == graphs[2] == graphs[0]


class DeviceReads(TorchDispatchMode):
    """The operations that read a value back to the host: on a GPU each makes the host wait
    until the device has caught up."""

    READS = {"aten::_local_scalar_dense", "aten::nonzero", "aten::_to_copy"}

    def __init__(self):
        super().__init__()
        self.reads: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        if name in self.READS and (name != "aten::_to_copy" or kwargs.get("device") == "cpu"):
            self.reads.append(name)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("method_name", ["mpt", "sp", "pct", "ft"])
def test_evaluation_reads_nothing_back_batch_by_batch(tokenizer, method_name, monkeypatch):
    """Predictions stay on the device until a language's last batch: one transfer."""
    data = load_task_data(RunConfig(data="synthetic", aux_size=16, test_limit=40, shots=4))
    config = RunConfig(method=method_name, model="tiny", data="synthetic", aux_size=16)
    method = build_method(config.resolved(), tokenizer, data)
    examples = [
        dataclasses.replace(example, premise=example.premise + " und" * (index % 3))
        for index, example in enumerate(data.test["de"])
    ]
    by_size = {size: eval_batches(method, examples, "de", size, 4096) for size in (1, 8)}
    assert not any(batch.padded for batch in by_size[1].batches)
    assert any(batch.padded for batch in by_size[8].batches)
    transfers = []
    tolist = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "tolist", lambda t: transfers.append(t.shape) or tolist(t))
    for batched in by_size.values():
        with DeviceReads() as device:
            predictions = predict_batched(method, batched, "de", "cpu")
        assert device.reads == [] and len(predictions) == 40
    assert transfers == [(40,), (40,)]  # one per evaluation, of all its predictions


@pytest.mark.parametrize("method_name", ["mpt", "sp", "pct", "ft"])
def test_a_training_step_never_waits_for_the_device(tokenizer, method_name):
    """Losses, backward, clipping and AdamW read nothing back (the losses are read in groups,
    once a second: train.LossLog); transformers' check whether a batch has padding (`.all()`)
    is left out of the attention mask (backbone.encoder_inputs)."""
    data = load_task_data(RunConfig(data="synthetic", aux_size=16, shots=4))
    config = RunConfig(method=method_name, model="tiny", data="synthetic", aux_size=16)
    method = build_method(config.resolved(), tokenizer, data)
    method.model.train()
    optimizer = build_optimizer(method, config, torch.device("cpu"))
    batch = next(iter(method.training_batches(torch.Generator().manual_seed(0))))
    batch = batch.bucketed(64, method.pad_id, 64)  # padding: transformers would check for it
    assert (batch.attention_mask == 0).any()
    with DeviceReads() as device:
        training_step(method, optimizer, batch, 1.0, contextlib.nullcontext)
    assert device.reads == []


@pytest.mark.parametrize(
    ("intervals", "length"),
    [
        ([], 0.0),
        ([(0, 10), (20, 30)], 20.0),  # apart
        ([(0, 10), (5, 15)], 15.0),  # overlapping: a copy beside a kernel counts once
        ([(0, 30), (5, 15), (10, 20)], 30.0),  # nested
        ([(20, 30), (0, 10), (10, 20)], 30.0),  # touching, unordered
    ],
)
def test_the_gpu_busy_time_counts_overlapping_rows_once(intervals, length):
    from benchmarks.gpu import covered

    assert covered(intervals) == length


def test_evaluation_batches_hold_a_token_budget_and_every_example_once(tokenizer):
    """Length-sorted batches within both limits; on mixed lengths the budget pads far less than
    one batch of every example (the CPU default)."""
    data = load_task_data(RunConfig(data="synthetic", aux_size=16, test_limit=120, shots=4))
    method = build_method(RunConfig(model="tiny", data="synthetic").resolved(), tokenizer, data)
    examples = [
        dataclasses.replace(example, premise=example.premise + " und" * (index % 40))
        for index, example in enumerate(data.test["de"])
    ]
    real = sum(len(encoded.input_ids) for encoded in method.encode(examples, "de"))
    whole = eval_batches(method, examples, "de", 256, 1 << 20)
    budget = eval_batches(method, examples, "de", 256, 600)
    assert len(whole.batches) == 1
    for batched in (whole, budget):
        assert sorted(batched.order) == list(range(len(examples)))
        assert sum(len(batch.labels) for batch in batched.batches) == len(examples)
    assert all(batch.input_ids.numel() <= 600 for batch in budget.batches)
    lengths = [batch.input_ids.shape[1] for batch in budget.batches]
    assert lengths == sorted(lengths)
    padded = sum(batch.input_ids.numel() for batch in budget.batches)
    assert padded < 1.2 * real < whole.batches[0].input_ids.numel()
    assert [len(b.labels) for b in eval_batches(method, examples, "de", 7, 1 << 20).batches] == [
        7
    ] * 17 + [1]
    single = eval_batches(method, examples[:2], "de", 256, 1)  # longer than the budget: alone
    assert [len(batch.labels) for batch in single.batches] == [1, 1]


@pytest.mark.parametrize("method_name", ["mpt", "sp", "pct", "ft"])
def test_compile_compiles_what_each_method_trains_and_evaluates(tokenizer, method_name):
    """--compile reaches the encoder in every method's training step and evaluation (MPT's loss
    used to bypass the compiled forward: no graph), and shapes met before compile nothing new."""
    from torch._dynamo.testing import CompileCounter

    data = load_task_data(RunConfig(data="synthetic", aux_size=16, test_limit=40, shots=4))
    config = RunConfig(method=method_name, model="tiny", data="synthetic", aux_size=16)
    method = build_method(config.resolved(), tokenizer, data)
    torch._dynamo.reset()
    counter = CompileCounter()
    compile_model(method, torch.device("cpu"), backend=counter)
    optimizer = build_optimizer(method, config, torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    method.model.train()

    def steps(count: int) -> None:
        for _ in range(count):
            batch = next(iter(method.training_batches(generator)))
            bucketed = batch.bucketed(32, method.pad_id, 64)
            training_step(method, optimizer, bucketed, 1.0, contextlib.nullcontext)

    steps(1)
    assert counter.frame_count >= 1  # the training step ran compiled code
    steps(4)  # the same bucket and, for dynamic sizes, at most one more graph
    warm = counter.frame_count
    steps(4)
    assert counter.frame_count == warm
    before = counter.frame_count
    batched = eval_batches(method, data.test["de"], "de", 16, 4096)
    predict_batched(method, batched, "de", "cpu", lambda b: b.bucketed(32, method.pad_id, 64))
    assert before < counter.frame_count <= before + 2  # the encoder again, in eval mode


@pytest.mark.parametrize("method_name", ["mpt", "sp", "pct", "ft"])
def test_a_step_in_length_groups_gives_the_losses_of_one_padded_pass(
    tokenizer, method_name, monkeypatch
):
    """On a CPU a step's rows run in groups of similar length (less padding); without dropout
    its losses and gradients are those of one pass over the whole padded batch."""
    from mpt_engine import encoding

    data = load_task_data(RunConfig(data="synthetic", aux_size=16, test_limit=40, shots=4))

    def varied(example, index):
        return dataclasses.replace(example, premise=example.premise + " und" * (index % 17))

    data = dataclasses.replace(
        data,
        train=[varied(example, index) for index, example in enumerate(data.train)],
        aux=[
            dataclasses.replace(pair, target=varied(pair.target, 3 * index))
            for index, pair in enumerate(data.aux)
        ],
    )
    torch.manual_seed(0)
    config = RunConfig(method=method_name, model="tiny", data="synthetic", aux_size=16)
    method = build_method(config.resolved(), tokenizer, data)
    method.model.eval()  # no dropout: the same numbers, not only the same distribution
    batch = next(iter(method.training_batches(torch.Generator().manual_seed(0))))

    def losses_and_gradients(overhead):
        monkeypatch.setattr(encoding, "CPU_GROUP_OVERHEAD", overhead)
        method.model.zero_grad()
        losses = method.loss(batch)
        losses.total.backward()
        grads = {
            n: p.grad.clone() for n, p in method.model.named_parameters() if p.grad is not None
        }
        return losses, grads

    whole, whole_grads = losses_and_gradients(math.inf)
    groups = encoding.length_groups(batch.lengths, 0)
    assert len(groups) > 2 and sorted(row for group in groups for row in group) == list(
        range(len(batch.lengths))
    )
    grouped, grouped_grads = losses_and_gradients(0)
    for name in ("total", "ce", "kl"):
        if getattr(whole, name) is not None:
            torch.testing.assert_close(getattr(grouped, name), getattr(whole, name))
    assert grouped_grads.keys() == whole_grads.keys()
    for name, grad in whole_grads.items():
        torch.testing.assert_close(grouped_grads[name], grad, atol=1e-6, rtol=1e-4)


def test_length_groups_cut_the_padding_and_keep_every_row():
    from mpt_engine.encoding import length_groups

    lengths = [50, 10, 12, 48, 11, 49]
    assert length_groups(lengths, math.inf) == [[1, 4, 2, 3, 5, 0]]  # one pass
    assert length_groups(lengths, 20) == [[1, 4, 2], [3, 5, 0]]  # 36 + 150 + 2 x 20
    assert length_groups(lengths, 0) == [[1], [4], [2], [3], [5], [0]]
    assert length_groups([7], 256) == [[0]]


def test_the_best_state_keeps_tied_weights_once(tokenizer):
    """The word embeddings and the MLM decoder are one tensor: the best epoch's copy holds it
    once (e5-small's is 366 MB), and loading it back keeps them tied."""
    from mpt_engine.backbone import load_masked_lm
    from mpt_engine.train import cpu_copy

    model = load_masked_lm("tiny", tokenizer)
    state = model.state_dict()
    tied = [
        n
        for n, v in state.items()
        if v.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    ]
    assert len(tied) == 2
    copied = cpu_copy(state)
    assert copied[tied[0]] is copied[tied[1]]
    assert copied[tied[0]].data_ptr() != state[tied[0]].data_ptr()  # a copy, not a view
    assert all(torch.equal(copied[name], value) for name, value in state.items())
    with torch.no_grad():
        model.get_input_embeddings().weight.add_(1.0)
    model.load_state_dict(copied)
    assert torch.equal(model.get_input_embeddings().weight, state[tied[0]])
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight

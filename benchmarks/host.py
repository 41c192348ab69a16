"""Host overhead of a training step and an evaluation batch, ours against the current way.

    python benchmarks/bench.py --host

At XLM-R base's layout (12 layers, 12 heads) with tiny widths (24), a 4,000-word vocabulary,
one example per batch and a 4-token prompt the arithmetic is small (a step issues the same
operations at any batch size and prompt length; attention with dropout still costs about
2 ms a pass on a CPU), so the time of a step is what the host spends issuing operations:
on a GPU, the time it cannot hide behind the device's work. Compared in one process, on two
copies of one model (the same weights), the same data and batches (collation excluded):

- ours: the engine's step (MPT's three batches joined into one encoder pass, the losses kept on
  the device and read in groups: train.LossLog; AdamW over flat parameters: flat_adamw);
- the current way, as the engine did it until 2026-11-30: one encoder pass per batch, each
  padded to its own length, with the 2-D attention mask (transformers checks it for padding),
  a check that the loss is finite and three `.item()` per step (each a wait for the device on
  a GPU, free on a CPU), clipping and fused AdamW over the parameters one by one.

Each figure is the median over repeats of timed blocks of steps, run alternately (ours, then
the current way) after a warm-up, with the spread (lowest-highest) beside it; a speed-up is the
median of the repeats' own ratios, which a machine that slows down or speeds up between
repeats (a shared VM) leaves alone. Also counted: the
ATen operations a step issues, which on a GPU each cost a kernel launch or more.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import statistics
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from mpt_engine import backbone
from mpt_engine.config import RunConfig
from mpt_engine.data import load_task_data
from mpt_engine.encoding import Batch, collate
from mpt_engine.losses import cross_entropy, symmetric_kl, total_loss
from mpt_engine.methods import build_method
from mpt_engine.tasks import load_task
from mpt_engine.train import LossLog, build_optimizer, parameter_groups, training_step

LAYOUT = dict(hidden_size=24, num_hidden_layers=12, num_attention_heads=12, intermediate_size=48)


class OperationCount(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def own_length(batch: Batch) -> Batch:
    """A part of a joined batch padded only to its own longest example, as it used to be."""
    length = int(batch.attention_mask.sum(-1).max())
    return dataclasses.replace(
        batch,
        input_ids=batch.input_ids[:, :length].contiguous(),
        attention_mask=batch.attention_mask[:, :length].contiguous(),
        token_type_ids=batch.token_type_ids[:, :length].contiguous(),
    )


def setup(method_name: str, former: bool = False):
    """The method on a CPU with its optimizer: the trainer's (build_optimizer: the PLM's
    parameters flattened), or with `former` AdamW over the parameters one by one, as before."""
    config = RunConfig(
        method=method_name, shots=8, aux_size=500, data="synthetic", batch_size=1, prompt_length=4
    ).resolved()
    data = load_task_data(config)
    tokenizer = backbone.load_tokenizer("tiny", data.texts(), load_task(config.task))
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    torch.manual_seed(0)
    masked_lm = XLMRobertaForMaskedLM(
        XLMRobertaConfig(
            vocab_size=len(tokenizer),
            max_position_embeddings=514,
            type_vocab_size=1,
            pad_token_id=tokenizer.pad_token_id,
            **LAYOUT,
        )
    )
    method = build_method(config, tokenizer, data, model=masked_lm)
    method.to(torch.device("cpu"))
    if former:
        groups = parameter_groups(method.model, config.weight_decay)
        optimizer = torch.optim.AdamW(groups, lr=config.lr, fused=True)
    else:
        optimizer = build_optimizer(method, config, torch.device("cpu"))
    return config, data, method, optimizer


def our_step(method, optimizer, log: LossLog, step: int, batch: Batch) -> None:
    """The trainer's step: train.training_step, then the losses kept for the log."""
    log.add(step, training_step(method, optimizer, batch.to("cpu"), 1.0, contextlib.nullcontext))


@contextlib.contextmanager
def former_mask(model):
    """The 2-D attention mask, which transformers checks for padding (a wait on a GPU)."""
    model.prepared_mask = False
    try:
        yield
    finally:
        model.prepared_mask = True


def current_step(method, optimizer, parts: tuple[Batch, ...]) -> tuple[float, ...]:
    """One encoder pass per part, a sync to check the loss and one per logged loss."""
    model = method.model
    english, *aux = (part.to("cpu") for part in parts)
    prompt = model.source_prompt()
    label_ids = method.label_ids.to(english.input_ids.device)
    ce = cross_entropy(model(english, prompt, label_ids), english.labels)
    kl = None
    total = ce
    if aux:
        aux_source, aux_target = aux
        kl = symmetric_kl(model(aux_source, prompt), model(aux_target, model.target_prompt()))
        total = total_loss(ce, kl, method.alpha)
    if not torch.isfinite(total):
        raise RuntimeError("diverged")
    total.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total.item(), ce.item(), None if kl is None else kl.item()


def training_figures(method_name: str, steps: int, repeats: int) -> dict:
    _, _, method, optimizer = setup(method_name)
    _, _, former, former_optimizer = setup(method_name, former=True)  # the same weights
    method.model.train()
    former.model.train()
    generator = torch.Generator().manual_seed(0)
    joined = list(itertools.islice(method.training_batches(generator), steps))
    separate = [tuple(own_length(part) for part in batch.split()) for batch in joined]

    def ours() -> float:
        log = LossLog(1, steps)
        started = time.perf_counter()
        for step, batch in enumerate(joined, 1):
            our_step(method, optimizer, log, step, batch)
        list(log.report())
        return (time.perf_counter() - started) / len(joined)

    def current() -> float:
        with former_mask(former.model):
            started = time.perf_counter()
            for parts in separate:
                current_step(former, former_optimizer, parts)
            return (time.perf_counter() - started) / len(separate)

    ours(), current()  # warm-up
    timings = {"ours": [], "current": []}
    for _ in range(repeats):
        timings["ours"].append(ours())
        timings["current"].append(current())
    with OperationCount() as counted_ours:
        our_step(method, optimizer, LossLog(1, 1), 1, joined[0])
    with OperationCount() as counted_current, former_mask(former.model):
        current_step(former, former_optimizer, separate[0])
    return {
        "ms": summary(timings["ours"]),
        "current_ms": summary(timings["current"]),
        "speedup": ratios(timings["current"], timings["ours"]),
        "ops": counted_ours.count,
        "current_ops": counted_current.count,
    }


@torch.inference_mode()
def evaluation_figures(batches: int, repeats: int) -> dict:
    _, data, method, _ = setup("mpt")
    method.model.eval()
    encoded = method.encode(data.test["de"], "de")
    size = 2  # tiny batches: host time, not arithmetic
    prepared = [
        collate(encoded[start : start + size], method.pad_id)
        for start in range(0, size * batches, size)
    ]

    def ours() -> float:
        started = time.perf_counter()
        predicted = [method.predict(batch.to("cpu"), "de") for batch in prepared]
        torch.cat(predicted).tolist()
        return (time.perf_counter() - started) / len(prepared)

    def current() -> float:
        started = time.perf_counter()
        for batch in prepared:
            method.predict(batch.to("cpu"), "de").tolist()
        return (time.perf_counter() - started) / len(prepared)

    ours(), current()
    timings = {"ours": [], "current": []}
    for _ in range(repeats):
        timings["ours"].append(ours())
        timings["current"].append(current())
    return {"ms": summary(timings["ours"]), "current_ms": summary(timings["current"])}


def ratios(slower: list[float], faster: list[float]) -> dict:
    """The median and spread of the paired ratios, repeat by repeat."""
    paired = [a / b for a, b in zip(slower, faster, strict=True)]
    return {
        "median": round(statistics.median(paired), 2),
        "low": round(min(paired), 2),
        "high": round(max(paired), 2),
    }


def summary(seconds: list[float]) -> dict:
    values = [1000 * value for value in seconds]
    return {
        "median": round(statistics.median(values), 2),
        "low": round(min(values), 2),
        "high": round(max(values), 2),
    }


def run(steps: int = 10, repeats: int = 15) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # host work is one thread; more only add noise at these widths
    try:
        mpt = training_figures("mpt", steps, repeats)
        sp = training_figures("sp", steps, repeats)
        evaluation = evaluation_figures(steps, repeats)
    finally:
        torch.set_num_threads(threads)
    return {
        "layout": "XLM-R base layout (12 layers x 12 heads), width 24, vocabulary 4,000, "
        "batches of 1, prompt of 4, 1 thread",
        "host_speedup": mpt["speedup"]["median"],
        "host_speedup_spread": [mpt["speedup"]["low"], mpt["speedup"]["high"]],
        "mpt_step_host_ms": mpt["ms"],
        "mpt_step_host_ms_current": mpt["current_ms"],
        "mpt_step_ops": mpt["ops"],
        "mpt_step_ops_current": mpt["current_ops"],
        "sp_step_host_ms": sp["ms"],
        "sp_step_host_ms_current": sp["current_ms"],
        "sp_host_speedup": sp["speedup"]["median"],
        "sp_step_ops": sp["ops"],
        "sp_step_ops_current": sp["current_ops"],
        "eval_batch_host_ms": evaluation["ms"],
        "eval_batch_host_ms_current": evaluation["current_ms"],
        "steps_per_repeat": steps,
        "repeats": repeats,
    }

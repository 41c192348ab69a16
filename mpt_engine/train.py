"""One run: setup, epochs with English-dev model selection, test of the best state on all 15
languages. The trainer knows nothing about any user interface: it yields events."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import transformers

from mpt_engine import backbone, checkpoint, paths
from mpt_engine.collapse import detect
from mpt_engine.config import TINY_MODEL, DataKind, Precision, RunConfig
from mpt_engine.data import TaskData, load_task_data
from mpt_engine.device import for_device, resolve_device
from mpt_engine.encoding import Batch
from mpt_engine.errors import Diverged, InvalidInput, RunFailed
from mpt_engine.evaluate import batch_tokens, evaluate
from mpt_engine.events import DevEvaluated, Event, RunFinished, RunStarted, TestEvaluated, TrainStep
from mpt_engine.flat_adamw import FlatAdamW, flattenable
from mpt_engine.methods import Losses, build_method
from mpt_engine.prompts import render, verbalizer_record
from mpt_engine.record import device_name
from mpt_engine.sources import DATA_DIR
from mpt_engine.tasks import load_task
from mpt_engine.token_cache import tokenizer_fingerprint
from mpt_engine.warm import WarmCache

BUCKET = 32  # a compiled model's sequence lengths: multiples of this


def position_limit(model: str, tokenizer) -> int:
    """The longest input the model can embed: its position embeddings (RoBERTa-style models
    start counting after the padding id) and the tokenizer's own limit, when it has one."""
    if model == TINY_MODEL:
        model_config = backbone.tiny_config(tokenizer)
    else:
        from transformers import AutoConfig

        model_config = backbone.load_pretrained(AutoConfig.from_pretrained, model)
    positions = getattr(model_config, "max_position_embeddings", None) or math.inf
    if "roberta" in model_config.model_type or model_config.model_type == "camembert":
        positions -= (model_config.pad_token_id or 0) + 1
    stated = getattr(tokenizer, "model_max_length", None) or math.inf
    limit = min(positions, stated if stated < 1_000_000 else math.inf)  # huge: unset
    return int(limit) if limit != math.inf else 1_000_000


def check_max_length(config: RunConfig, tokenizer) -> None:
    """max_length within the model's positions: a longer input would fail in the middle of a
    run (IndexError), after its folder exists."""
    limit = position_limit(config.model, tokenizer)
    if config.max_length > limit:
        raise InvalidInput(
            f"{{max_length}} {config.max_length} exceeds the {limit} positions of model "
            f"{config.model}; use {{max_length}} {limit} or less",
            field="max_length",
            value=config.max_length,
            allowed=f"at most {limit}",
        )


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW's groups: no weight decay on biases and normalisation weights (the 1-D tensors),
    as in Zhao & Schütze's code."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in parameters if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in parameters if p.ndim < 2], "weight_decay": 0.0},
    ]


def build_optimizer(method, config: RunConfig, device: torch.device) -> FlatAdamW:
    """AdamW over parameter_groups, the PLM's parameters flattened (flat_adamw), with the fused
    kernel: one pass over all parameters (on a CPU about 10x faster than the per-tensor loop
    for a 250k-row embedding matrix), and no read of a value back from the device. Call it
    once the method is on its device."""
    groups = parameter_groups(method.model, config.weight_decay)
    fused = device.type in ("cuda", "cpu")
    return FlatAdamW(groups, flattenable(method.backbone), lr=config.lr, fused=fused)


def compile_model(method, device: torch.device, backend="inductor") -> None:
    """torch.compile of the encoder, which every method runs in training and in evaluation
    (compiling the wrapper's `forward` compiled nothing of MPT's training: its loss calls the
    encoder directly); what surrounds it (the prompt written into its slots, the head at the
    mask) is a few small operations. With CUDA graphs on a GPU (the host out of the step; one
    graph per bucketed shape: Trainer.shape). A worker's later runs reuse the compiled code:
    same classes, and parameters are inputs, not constants."""
    graphs = {"mode": "reduce-overhead"} if device.type == "cuda" and backend == "inductor" else {}
    method.backbone.base_model.compile(backend=backend, **graphs)


def training_step(method, optimizer, batch, max_grad_norm: float, autocast) -> Losses:
    """One optimizer step on a batch already on the device: the loss under `autocast()`, its
    gradients clipped to `max_grad_norm`. The benchmarks time this very function."""
    with autocast():
        losses = method.loss(batch)
    losses.total.backward()
    trained = [p for group in optimizer.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(trained, max_grad_norm, foreach=True)  # one kernel per step
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return losses


def cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict copied to the CPU (the device holds one copy of the model), each tensor
    once: tied weights (the word embeddings and the MLM decoder, 366 MB for e5-small) share
    their copy as they share their memory."""
    copies: dict[tuple, torch.Tensor] = {}
    kept = {}
    for name, value in state.items():
        key = (value.device, value.data_ptr(), value.dtype, value.shape, value.stride())
        if key not in copies:
            copies[key] = value.detach().to("cpu", copy=True)
        kept[name] = copies[key]
    return kept


class LossLog:
    """The losses of recent steps, kept on the device and reported together, at most once a
    second: reading a loss makes the host wait for the device, and three reads a step kept a GPU
    idle between steps. A non-finite loss still stops the run, at the step that produced it."""

    SECONDS = 1.0

    def __init__(self, epoch: int, total_steps: int):
        self.epoch, self.total_steps = epoch, total_steps
        self.steps: list[int] = []
        self.values: list[torch.Tensor] = []
        self.has_kl = False
        self.reported = time.monotonic()

    def add(self, step: int, losses: Losses) -> None:
        self.has_kl = losses.kl is not None
        kl = losses.ce if losses.kl is None else losses.kl
        self.steps.append(step)
        self.values.append(torch.stack([losses.total, losses.ce, kl]).detach().float())

    def due(self) -> bool:
        return time.monotonic() - self.reported >= self.SECONDS

    def report(self) -> Iterator[TrainStep]:
        if not self.steps:
            return
        rows = torch.stack(self.values).tolist()  # the one wait for the device
        steps, self.steps, self.values = self.steps, [], []
        self.reported = time.monotonic()
        for step, (total, ce, kl) in zip(steps, rows, strict=True):
            if not math.isfinite(total):
                raise Diverged(
                    f"loss became {total} at epoch {self.epoch}, step {step}; try a lower {{lr}}"
                )
            kl_value = kl if self.has_kl else None
            yield TrainStep(self.epoch, step, self.total_steps, total, ce, kl_value)


class Trainer:
    def __init__(
        self,
        config: RunConfig,
        device: str = "auto",
        data: TaskData | None = None,
        compile: bool = False,
        warm: WarmCache | None = None,
    ):
        self.device = resolve_device(device)
        # precision auto resolved for this device and bf16 checked, before anything is stored
        self.config = for_device(config, self.device)
        self.precision = self.config.precision
        self.compile = compile
        self.data = data
        self.warm = warm or WarmCache(keep_weights=False)
        self.method = None

    def setup(self) -> None:
        """Load data, tokenizer and model; everything that can fail before training starts."""
        config = self.config
        paths.writable_cache_dir()  # tokenizers and tokenised text are cached
        transformers.set_seed(config.seed)  # Python, NumPy and torch
        if self.data is None:
            self.data = load_task_data(config)
        self.task = load_task(config.task)
        self.tokenizer = self.warm.tokenizer(config.model, self.data.texts(), self.task)
        check_max_length(config, self.tokenizer)  # before any weight is allocated
        pretrained = self.warm.backbone(config, self.tokenizer, len(self.task.labels))
        self.method = build_method(config, self.tokenizer, self.data, model=pretrained)
        self.method.to(self.device)
        on_gpu = self.device.type == "cuda"
        if on_gpu:
            torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls on tensor cores
            torch.backends.cudnn.allow_tf32 = True
        if self.compile:
            compile_model(self.method, self.device)
        self.optimizer = build_optimizer(self.method, config, self.device)
        self.generator = torch.Generator().manual_seed(config.seed)

    def events(self) -> Iterator[Event]:
        """The run's events; running out of memory becomes one actionable RunFailed."""
        try:
            yield from self._events()
        except (torch.OutOfMemoryError, MemoryError):
            raise RunFailed(
                f"out of memory on {self.device.type}: lower {{batch_size}} (training), "
                "{eval_batch_size} (evaluation) or {max_length}"
            ) from None

    def _events(self) -> Iterator[Event]:
        started = time.monotonic()
        if self.method is None:
            self.setup()
        config, model = self.config, self.method.model
        steps_per_epoch = self.method.steps_per_epoch
        total_steps = steps_per_epoch * config.epochs
        yield RunStarted(
            config.run_id, config.to_dict(), config.epochs, steps_per_epoch, str(self.device)
        )
        best_accuracy, best_epoch, best_state = -math.inf, 0, None
        step = 0
        for epoch in range(1, config.epochs + 1):
            model.train()
            unreported = LossLog(epoch, total_steps)
            for batch in self.method.training_batches(self.generator):
                step += 1
                on_device = self.shape(batch).to(self.device)
                losses = training_step(
                    self.method, self.optimizer, on_device, config.max_grad_norm, self.autocast
                )
                unreported.add(step, losses)
                if unreported.due():
                    yield from unreported.report()
            yield from unreported.report()
            if not self.optimizer.intact(model):  # a bug of ours, never silent: no learning
                raise RunFailed("internal error: the model's parameters left AdamW's buffers")
            dev = self._evaluate(self.data.dev, self.task.source_language, "dev").accuracy
            improved = dev > best_accuracy  # strictly better, as in Zhao & Schütze's code
            if improved:
                best_accuracy, best_epoch = dev, epoch
                best_state = cpu_copy(model.state_dict())
            yield DevEvaluated(epoch, dev, best_accuracy, best_epoch, improved)
        model.load_state_dict(best_state)
        per_language, predicted = {}, {}
        for language, examples in self.data.test.items():
            evaluation = self._evaluate(examples, language, f"test.{language}")
            per_language[language] = evaluation.accuracy
            predicted[language] = evaluation.predictions
            yield TestEvaluated(
                language,
                evaluation.accuracy,
                len(examples),
                list(evaluation.predictions),
                gold=[example.label for example in examples],
                rows=self.data.test_rows.get(language, list(range(len(examples)))),
            )
        collapse = detect(predicted, self.task.labels)
        yield RunFinished(
            run_id=config.run_id,
            method=config.method.value,
            shots=config.shots,
            seed=config.seed,
            per_language=per_language,
            average=sum(per_language.values()) / len(per_language),
            dev_accuracy=best_accuracy,
            best_epoch=best_epoch,
            seconds=round(time.monotonic() - started, 3),
            config=config.to_dict(),
            collapse=None if collapse is None else collapse.to_dict(),
        )

    def record(self) -> dict:
        """What a reader needs to see what this run computed and classified: device, precision,
        data and tokenizer fingerprints, the label words (id and piece) and the first training
        example as the model reads it."""
        method, tokenizer = self.method, self.tokenizer
        (example,) = method.encode(self.data.train[:1], self.task.source_language)
        record = {
            "device": device_name(self.device),
            "precision": self.precision.value,
            "compiled": self.compile,
            "data_fingerprints": self.data.fingerprints,
            "tokenizer_fingerprint": tokenizer_fingerprint(tokenizer),
            "template_example": render(tokenizer, example),
            **self._data_folder(),
        }
        if method.label_ids is not None:
            ids = method.label_ids.tolist()
            record["label_words"] = verbalizer_record(tokenizer, ids, self.task.labels)
        return record

    def save_checkpoint(self, folder: Path) -> None:
        """The trained state (the best epoch's, once the run has finished) and its tokenizer."""
        checkpoint.save(self.method, self.tokenizer, folder)

    def _data_folder(self) -> dict[str, str]:
        """The local data folder the run read (MPT_DATA_DIR), so its rerun line can name it."""
        folder = os.environ.get(DATA_DIR)
        if self.config.data is not DataKind.LOCAL or not folder:
            return {}
        return {"data_dir": os.path.abspath(os.path.expanduser(folder))}

    def autocast(self):
        """bf16 autocast when the precision asks for it (losses are computed in float32)."""
        enabled = self.precision is Precision.BF16
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def shape(self, batch: Batch) -> Batch:
        """A compiled model's batches are padded to a multiple of BUCKET tokens."""
        if not self.compile:
            return batch
        return batch.bucketed(BUCKET, self.method.pad_id, self.config.max_length)

    def _evaluate(self, examples, language: str, split: str):
        """`split` names the examples' fingerprint: their batches are made once per process."""
        size, tokens = self.config.eval_batch_size, batch_tokens(self.device)
        fingerprint = self.data.fingerprints.get(split)
        batched = self.warm.eval_batches(self.method, examples, language, size, tokens, fingerprint)
        with self.autocast():
            return evaluate(self.method, examples, language, batched, self.device, self.shape)

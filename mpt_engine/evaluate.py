"""Predictions and accuracy of a method on one language's examples."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from mpt_engine.data.examples import Example
from mpt_engine.encoding import Batch, budget_batches, collate


@dataclass
class Evaluation:
    accuracy: float  # percent
    predictions: list[int]  # label index per example, in input order (-1: no label word)


@dataclass
class EvalBatches:
    """A language's examples encoded and batched for evaluation, similar lengths together (less
    padding); `order[i]` is the input position of the i-th example in the batches."""

    order: list[int]
    batches: list[Batch]


# Padded tokens an evaluation batch may hold. A CPU's time grows with every padded token, so
# short batches of similar lengths cost least (a language's 200 examples in one batch of 256
# were padded to the longest: 2.5x the real tokens); a GPU's time grows with the number of
# batches (each a launch of every kernel), so its batches are as large as memory allows.
BATCH_TOKENS = {"cuda": 1 << 17}
CPU_BATCH_TOKENS = 4096


def batch_tokens(device) -> int:
    return BATCH_TOKENS.get(torch.device(device).type, CPU_BATCH_TOKENS)


def eval_batches(
    method, examples: Sequence[Example], language: str, batch_size: int, tokens: int
) -> EvalBatches:
    """Length-sorted batches of at most `batch_size` examples and `tokens` padded tokens (one
    example longer than `tokens` makes a batch of its own)."""
    encoded = method.encode(examples, language)
    lengths = [len(example.input_ids) for example in encoded]
    groups = budget_batches(lengths, tokens, batch_size)
    batches = [collate([encoded[index] for index in group], method.pad_id) for group in groups]
    return EvalBatches([index for group in groups for index in group], batches)


def unchanged(batch: Batch) -> Batch:
    return batch


@torch.inference_mode()
def predict_batched(
    method, batched: EvalBatches, language: str, device, shape: Callable = unchanged
) -> list[int]:
    """Predictions in input order; they stay on the device until the last batch (one transfer
    per language). `shape` pads a batch for a compiled model (Trainer.shape)."""
    method.model.eval()
    if not batched.batches:
        return []
    predicted = [method.predict(shape(batch).to(device), language) for batch in batched.batches]
    predictions = [0] * len(batched.order)
    for index, label in zip(batched.order, torch.cat(predicted).tolist(), strict=True):
        predictions[index] = label
    return predictions


def predict_labels(
    method, examples: Sequence[Example], language: str, batch_size: int, device
) -> list[int]:
    batched = eval_batches(method, examples, language, batch_size, batch_tokens(device))
    return predict_batched(method, batched, language, device)


def evaluate(
    method,
    examples: Sequence[Example],
    language: str,
    batched: EvalBatches,
    device,
    shape: Callable = unchanged,
) -> Evaluation:
    """Accuracy on the examples, `batched` (eval_batches: a worker keeps them between runs)."""
    predictions = predict_batched(method, batched, language, device, shape)
    correct = sum(
        pred == example.label for pred, example in zip(predictions, examples, strict=True)
    )
    return Evaluation(100.0 * correct / len(examples), predictions)

"""Predictions and accuracy of a method on one language's examples."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from mpt_engine.data.examples import Example
from mpt_engine.encoding import Batch, collate


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


def eval_batches(method, examples: Sequence[Example], language: str, batch_size: int):
    encoded = method.encode(examples, language)
    order = sorted(range(len(encoded)), key=lambda index: len(encoded[index].input_ids))
    batches = [
        collate([encoded[index] for index in order[start : start + batch_size]], method.pad_id)
        for start in range(0, len(order), batch_size)
    ]
    return EvalBatches(order, batches)


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
    batched = eval_batches(method, examples, language, batch_size)
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

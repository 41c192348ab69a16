"""Predictions and accuracy of a method on one language's examples."""

from __future__ import annotations

from collections.abc import Sequence
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


@torch.inference_mode()
def predict_labels(
    method,
    examples: Sequence[Example],
    language: str,
    batch_size: int,
    device,
    batched: EvalBatches | None = None,
) -> list[int]:
    """Predictions in input order; they stay on the device until the last batch (one transfer
    per language). `batched`: the examples already batched (a worker keeps them between runs)."""
    method.model.eval()
    batched = batched or eval_batches(method, examples, language, batch_size)
    if not batched.batches:
        return []
    predicted = [method.predict(batch.to(device), language) for batch in batched.batches]
    predictions = [0] * len(batched.order)
    for index, label in zip(batched.order, torch.cat(predicted).tolist(), strict=True):
        predictions[index] = label
    return predictions


def evaluate(
    method,
    examples: Sequence[Example],
    language: str,
    batch_size: int,
    device,
    batched: EvalBatches | None = None,
) -> Evaluation:
    predictions = predict_labels(method, examples, language, batch_size, device, batched)
    correct = sum(
        pred == example.label for pred, example in zip(predictions, examples, strict=True)
    )
    return Evaluation(100.0 * correct / len(examples), predictions)

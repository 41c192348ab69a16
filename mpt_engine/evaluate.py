"""Predictions and accuracy of a method on one language's examples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mpt_engine.data.examples import Example
from mpt_engine.encoding import collate


@dataclass
class Evaluation:
    accuracy: float  # percent
    predictions: list[int]  # label index per example, in input order (-1: no label word)


@torch.inference_mode()
def predict_labels(
    method, examples: Sequence[Example], language: str, batch_size: int, device
) -> list[int]:
    """Batches of similar length (less padding); the predictions stay on the device until the
    last batch (one transfer per language) and are returned in input order."""
    method.model.eval()
    encoded = method.encode(examples, language)
    order = sorted(range(len(encoded)), key=lambda index: len(encoded[index].input_ids))
    batches = (
        collate([encoded[index] for index in order[start : start + batch_size]], method.pad_id)
        for start in range(0, len(order), batch_size)
    )
    predicted = [method.predict(batch.to(device), language) for batch in batches]
    if not predicted:
        return []
    predictions = [0] * len(encoded)
    for index, label in zip(order, torch.cat(predicted).tolist(), strict=True):
        predictions[index] = label
    return predictions


def evaluate(
    method, examples: Sequence[Example], language: str, batch_size: int, device
) -> Evaluation:
    predictions = predict_labels(method, examples, language, batch_size, device)
    correct = sum(
        pred == example.label for pred, example in zip(predictions, examples, strict=True)
    )
    return Evaluation(100.0 * correct / len(examples), predictions)

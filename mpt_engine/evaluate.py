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
    """Batches of similar length (less padding); predictions are returned in input order."""
    method.model.eval()
    encoded = method.encode(examples, language)
    order = sorted(range(len(encoded)), key=lambda index: len(encoded[index].input_ids))
    predictions = [0] * len(encoded)
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        batch = collate([encoded[index] for index in indices], method.pad_id).to(device)
        for index, label in zip(indices, method.predict(batch, language).tolist(), strict=True):
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

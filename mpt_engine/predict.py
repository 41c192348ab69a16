"""Classify new premise-hypothesis pairs with a finished run's checkpoint, or with a run
exported in Hugging Face formats (hf_export)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from mpt_engine import checkpoint, hf_export
from mpt_engine.config import Method
from mpt_engine.data.examples import Example
from mpt_engine.errors import InvalidInput, SourceUnavailable
from mpt_engine.evaluate import predict_labels
from mpt_engine.tasks import Task, load_task, task_of
from mpt_engine.train import resolve_device

OTHER = "other"  # PCT's answer when the vocabulary argmax is no label word


def trained_task(source: Path) -> Task:
    """The task a run folder or an exported folder was trained on, read without its model."""
    exported = hf_export.is_export(source)
    path = source / (hf_export.PROMPT_CONFIG if exported else "config.json")
    try:
        values = json.loads(path.read_text())
        return task_of(values["config"] if exported else values)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise SourceUnavailable(f"{path}: unreadable ({error})") from None


def predict(source: Path, pairs: Sequence[tuple[Example, str]], device: str = "cpu") -> list[str]:
    """The label (its name in the run's task; "other" when PCT's vocabulary argmax is no label
    word) of each (example, language) pair, the checkpoint loaded once and each language's
    pairs batched.

    MPT reads a target language (any code but en, XNLI's or not) with p^T, English with p^S.
    """
    device = str(resolve_device(device))
    load = hf_export.load if hf_export.is_export(source) else checkpoint.load
    config, method = load(source, device)
    languages = list(dict.fromkeys(language for _, language in pairs))
    task = load_task(config.task)
    if config.method is Method.PCT:
        for language in languages:
            if language not in task.pct_templates:
                raise InvalidInput(
                    f"PCT has templates for the {task.name} languages only, not {language!r}"
                )
    labels = [OTHER] * len(pairs)
    for language in languages:
        indices = [i for i, (_, of) in enumerate(pairs) if of == language]
        examples = [pairs[i][0] for i in indices]
        predicted = predict_labels(method, examples, language, config.eval_batch_size, device)
        for index, label in zip(indices, predicted, strict=True):
            labels[index] = task.labels[label] if label >= 0 else OTHER
    return labels

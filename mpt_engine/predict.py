"""Classify new premise-hypothesis pairs with a finished run's checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mpt_engine import checkpoint
from mpt_engine.config import Method
from mpt_engine.data.examples import Example
from mpt_engine.errors import InvalidInput
from mpt_engine.evaluate import predict_labels
from mpt_engine.languages import XNLI_LANGUAGES
from mpt_engine.train import resolve_device


def predict(
    run_folder: Path, examples: Sequence[Example], language: str, device: str = "cpu"
) -> list[int]:
    """Label indices (languages.LABELS; -1 when PCT's vocabulary argmax is no label word).

    MPT reads a target language (any code but en, XNLI's or not) with p^T, English with p^S.
    """
    device = str(resolve_device(device))
    config, method = checkpoint.load(run_folder, device)
    if config.method is Method.PCT and language not in XNLI_LANGUAGES:
        raise InvalidInput(f"PCT has templates for the XNLI languages only, not {language!r}")
    return predict_labels(method, examples, language, config.eval_batch_size, device)

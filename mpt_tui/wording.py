"""Engine errors in the app's words: an option the engine names (`{aux_size}`) is called by the
launcher's label for it, or in plain words when the form has no such field."""

from __future__ import annotations

from mpt_engine.config import options
from mpt_engine.errors import MptError, plain_words

# The form's labels for the options engine messages name, beside the config's own.
LABELS = {spec.name: spec.shown for spec in options()} | {
    "gpus": "GPUs",
    "gpus_per_run": "GPUs per run",
    "runs_per_gpu": "runs per GPU",
}


def label(field: str) -> str:
    return LABELS.get(field, plain_words(field))


def in_app_words(problem: Exception) -> str:
    return problem.phrased(label) if isinstance(problem, MptError) else str(problem)

"""What a process that trains run after run keeps between them (a grid in this process, or a
long-lived worker: `python -m mpt_engine.worker`): pretrained tokenizers and weights, and the
test and dev sets encoded and batched (also across the epochs of one run's dev evaluations).

Nothing kept changes a run's numbers: a run gets a fresh copy of the pretrained weights, and
weights are kept only when loading them left the random state untouched, so the run draws the
same random numbers as in a fresh process (tests/test_grid.py checks a run after two others).
"""

from __future__ import annotations

import copy

import torch

from mpt_engine import backbone
from mpt_engine.config import TINY_MODEL, Method, RunConfig
from mpt_engine.evaluate import EvalBatches, eval_batches
from mpt_engine.methods import load_backbone
from mpt_engine.tasks import Task

EVALUATION_SETS_KEPT = 34  # one per template and language: two templates' test and dev sets


class WarmCache:
    """`keep_weights=False` for a process that trains one run: a kept copy would only cost
    memory."""

    def __init__(self, keep_weights: bool = True) -> None:
        self.keep_weights = keep_weights
        self.tokenizers: dict[str, object] = {}
        self.pretrained: dict[tuple, torch.nn.Module | None] = {}  # None: load every time
        self.evaluation_sets: dict[tuple, EvalBatches] = {}  # oldest first

    def tokenizer(self, model: str, corpus, task: Task):
        """The model's tokenizer; `tiny` trains one on the run's texts, so it is not kept."""
        if model == TINY_MODEL:
            return backbone.load_tokenizer(model, corpus, task)
        if model not in self.tokenizers:
            self.tokenizers[model] = backbone.load_tokenizer(model)
        return self.tokenizers[model]

    def backbone(self, config: RunConfig, tokenizer, labels: int) -> torch.nn.Module:
        """A fresh copy of the run's pretrained model (`tiny`: new random weights each run)."""
        if config.model == TINY_MODEL or not self.keep_weights:
            return load_backbone(config, tokenizer, labels)
        key = (config.model, config.method is Method.FT, labels)
        if key not in self.pretrained:
            before = torch.random.get_rng_state()
            model = load_backbone(config, tokenizer, labels)
            untouched = torch.equal(before, torch.random.get_rng_state())
            self.pretrained[key] = copy.deepcopy(model) if untouched else None
            return model
        kept = self.pretrained[key]
        return load_backbone(config, tokenizer, labels) if kept is None else copy.deepcopy(kept)

    def eval_batches(
        self, method, examples, language: str, size: int, tokens: int, fingerprint: str | None
    ) -> EvalBatches:
        """A language's examples encoded and batched by the method's template (at most `size`
        examples and `tokens` padded tokens a batch); `fingerprint` (the data's) tells example
        sets apart (None: not known, so not kept)."""
        if fingerprint is None:
            return eval_batches(method, examples, language, size, tokens)
        key = (method.template.key, language, size, tokens, fingerprint)
        kept = self.evaluation_sets.pop(key, None)
        if kept is None:
            kept = eval_batches(method, examples, language, size, tokens)
        self.evaluation_sets[key] = kept
        while len(self.evaluation_sets) > EVALUATION_SETS_KEPT:
            del self.evaluation_sets[next(iter(self.evaluation_sets))]
        return kept

"""FT, SP, PCT and MPT: what each trains on, its loss, and its prediction.

SP is MPT with neither translator nor alignment task (the paper's Table II row "w/o MPT
framework" is SP's row of Table I), so both are one class.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from mpt_engine import backbone
from mpt_engine.config import Method, RunConfig, TranslatorKind
from mpt_engine.data.examples import Example, TaskData
from mpt_engine.encoding import Batch, Encoded, in_length_groups, join
from mpt_engine.losses import cross_entropy, symmetric_kl, total_loss
from mpt_engine.model import PromptedMaskedLM
from mpt_engine.prompts import (
    ClozeTemplate,
    CrossLingualTemplate,
    PairTemplate,
    label_word_ids,
    pct_label_ids,
)
from mpt_engine.tasks import Task, load_task


@dataclass
class Losses:
    total: torch.Tensor
    ce: torch.Tensor
    kl: torch.Tensor | None = None


class TrainingMethod(Protocol):
    """What the trainer, the evaluation and the checkpoint use of a method (FT, SP/MPT, PCT)."""

    backbone: torch.nn.Module  # the pretrained model inside `model`
    model: torch.nn.Module  # every trained parameter
    label_ids: torch.Tensor | None  # the verbalizer's word ids (None: a classification head)
    pad_id: int
    batch_size: int

    def prepare(self, data: TaskData) -> None:
        """Encode the training data once."""

    @property
    def steps_per_epoch(self) -> int: ...

    def to(self, device: torch.device) -> None:
        """The model and every constant (label word ids) on the device, once."""

    def training_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        """One epoch of steps: the batch `loss` takes, the step's parts joined into one."""

    def loss(self, step: Batch) -> Losses: ...

    def encode(self, examples: Sequence[Example], language: str) -> list[Encoded]: ...

    def predict(self, batch: Batch, language: str) -> torch.Tensor:
        """Label indices, (B,)."""


def epoch_batches(size: int, batch_size: int, steps: int, generator: torch.Generator):
    """Index batches for `steps` steps over `size` examples, reshuffled at every pass, so a
    shorter stream cycles alongside a longer one."""
    per_pass = math.ceil(size / batch_size)
    for step in range(steps):
        if step % per_pass == 0:
            order = torch.randperm(size, generator=generator).tolist()
        chunk = step % per_pass
        yield order[chunk * batch_size : (chunk + 1) * batch_size]


def view_batches(
    views: Sequence[list[Encoded]],
    batch_size: int,
    generator: torch.Generator,
    steps: int | None = None,
) -> Iterator[list[list[Encoded]]]:
    """The same examples of each view (lists aligned by index), one part per view, step by
    step; `steps` defaults to one pass over the views."""
    size = len(views[0])
    for indices in epoch_batches(
        size, batch_size, steps or math.ceil(size / batch_size), generator
    ):
        yield [[view[index] for index in indices] for view in views]


class SoftPromptMethod:
    """SP (source prompt only, CE) and MPT (CE on English with p^S plus the KL alignment task on
    the auxiliary corpus with p^S and p^T; inference on target languages with p^T)."""

    def __init__(self, config: RunConfig, tokenizer, masked_lm, task: Task):
        is_mpt = config.method is Method.MPT
        self.alpha = config.alpha if is_mpt else 1.0
        self.backbone = masked_lm
        self.model = PromptedMaskedLM(
            masked_lm,
            config.prompt_length,
            config.translator if is_mpt else TranslatorKind.NONE,
        )
        self.template = ClozeTemplate(
            tokenizer, config.prompt_length, config.position, config.max_length, task.cloze
        )
        self.source_language = task.source_language
        self.label_ids = torch.tensor(
            label_word_ids(tokenizer, task.words(task.source_language), task.labels)
        )
        # A language with a verbalizer of its own reads its own words.
        self.own_label_ids = {
            language: torch.tensor(label_word_ids(tokenizer, words, task.labels))
            for language, words in task.verbalizer_by_language.items()
        }
        self.pad_id = tokenizer.pad_token_id
        self.batch_size = config.batch_size

    def to(self, device: torch.device) -> None:
        self.model.to(device)
        self.label_ids = self.label_ids.to(device)
        self.own_label_ids = {lang: ids.to(device) for lang, ids in self.own_label_ids.items()}

    def label_logits(
        self, batch: Batch, prompt: torch.Tensor, label_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Eq. (2): the label words' logits at [MASK], (B, labels); their softmax is P^CLS."""
        rows = self.label_ids if label_ids is None else label_ids
        return self.model(batch, prompt, rows.to(batch.input_ids.device))

    def prepare(self, data: TaskData) -> None:
        """Encode the training data once: English k-shot and, for MPT, both auxiliary sides."""
        self.train = self.template.encode(data.train)
        self.aux_pairs = len(data.aux)  # sets the epoch's length, even when alpha = 1 skips KL
        aligns = self.alpha < 1.0 and data.aux
        self.aux_source = self.template.encode([pair.source for pair in data.aux]) if aligns else []
        self.aux_target = self.template.encode([pair.target for pair in data.aux]) if aligns else []

    @property
    def steps_per_epoch(self) -> int:
        longest = max(len(self.train), self.aux_pairs)
        return math.ceil(longest / self.batch_size)

    def training_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        """English or, with the alignment task, English + aux source + aux target joined: the
        shorter stream cycles alongside the longer one."""
        steps, size, pad = self.steps_per_epoch, self.batch_size, self.pad_id
        english = view_batches((self.train,), size, generator, steps)
        if not self.aux_source:
            return (join(parts, pad) for parts in english)
        aux = view_batches((self.aux_source, self.aux_target), size, generator, steps)
        return (join(first + second, pad) for first, second in zip(english, aux, strict=True))

    def loss(self, step: Batch) -> Losses:
        """Eq. (8) from one encoder pass over the step's parts: English with p^S (CE) and, for
        MPT, the auxiliary pairs' source side with p^S and target side with p^T (KL). Dropout
        draws every element's mask independently, so one pass equals three in distribution
        (and exactly, without dropout: tests/test_equations.py)."""
        source_prompt = self.model.source_prompt()
        if len(step.parts) < 3:
            ce = cross_entropy(self.label_logits(step, source_prompt), step.labels)
            return Losses(total=ce, ce=ce)
        english, aux_source, aux_target = step.parts
        prompts = torch.cat(
            [
                source_prompt.expand(english + aux_source, -1, -1),
                self.model.translator(source_prompt).expand(aux_target, -1, -1),  # Eq. (4)
            ]
        )
        states = self.model.mask_states(step, prompts)
        english_states, aux_states = states.split([english, aux_source + aux_target])
        ce = cross_entropy(self.model.head(english_states, self.label_ids), step.labels[:english])
        source_logits, target_logits = self.model.head(aux_states).split([aux_source, aux_target])
        kl = symmetric_kl(source_logits, target_logits)
        return Losses(total=total_loss(ce, kl, self.alpha), ce=ce, kl=kl)

    def encode(self, examples: Sequence[Example], language: str) -> list[Encoded]:
        return self.template.encode(examples)

    def predict(self, batch: Batch, language: str) -> torch.Tensor:
        """p^S for the source language, p^T = Transl(p^S) for every target language (for SP the
        translator is the identity)."""
        is_source = language == self.source_language
        prompt = self.model.source_prompt() if is_source else self.model.target_prompt()
        return self.label_logits(batch, prompt, self.own_label_ids.get(language)).argmax(-1)


class CrossLingualTemplateMethod:
    """PCT: every English example is also read through one random non-English template (drawn
    once, at load time); CE on both views and a symmetric KL between their mask distributions,
    weight 1. As in PCT's code, CE and prediction run over the full vocabulary: predicting any
    token other than the gold label word is an error. Each test language uses its own template.
    """

    def __init__(self, config: RunConfig, tokenizer, masked_lm, task: Task):
        task.check_pct()
        self.backbone = masked_lm
        self.model = PromptedMaskedLM(masked_lm)
        self.template = CrossLingualTemplate(tokenizer, config.max_length, task.pct_templates)
        self.label_ids = torch.tensor(pct_label_ids(tokenizer, task))
        self.pad_id = tokenizer.pad_token_id
        self.batch_size = config.batch_size
        self.seed = config.seed
        self.source_language, self.target_languages = task.source_language, task.target_languages

    def prepare(self, data: TaskData) -> None:
        self.english_view = self.template.encode(data.train, self.source_language)
        rng = random.Random(self.seed)
        languages = [rng.choice(self.target_languages) for _ in data.train]
        self.foreign_view = [
            self.template.encode([example], language)[0]
            for example, language in zip(data.train, languages, strict=True)
        ]

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.english_view) / self.batch_size)

    def to(self, device: torch.device) -> None:
        self.model.to(device)
        self.label_ids = self.label_ids.to(device)

    def training_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        views = (self.english_view, self.foreign_view)
        return (
            join(parts, self.pad_id) for parts in view_batches(views, self.batch_size, generator)
        )

    def loss(self, step: Batch) -> Losses:
        """Both views in one encoder pass (the English one first)."""
        targets = self.label_ids[step.labels]
        english_logits, foreign_logits = self.model(step).split(list(step.parts))
        english_targets, foreign_targets = targets.split(list(step.parts))
        ce = cross_entropy(english_logits, english_targets) + cross_entropy(
            foreign_logits, foreign_targets
        )
        kl = symmetric_kl(english_logits, foreign_logits)
        return Losses(total=ce + kl, ce=ce, kl=kl)

    def encode(self, examples: Sequence[Example], language: str) -> list[Encoded]:
        return self.template.encode(examples, language)

    def predict(self, batch: Batch, language: str) -> torch.Tensor:
        """The label whose word is the vocabulary argmax, or -1 when it is no label word."""
        words = self.model(batch).argmax(-1)
        label_ids = self.label_ids.to(words.device)
        hits = words[:, None] == label_ids[None, :]
        return torch.where(hits.any(-1), hits.int().argmax(-1), -1)


class FineTuningMethod:
    """FT: a sequence-classification head on the pair encoding, the whole model trained."""

    label_ids = None  # a classification head, no label words

    def __init__(self, config: RunConfig, tokenizer, classifier, task: Task):
        self.backbone = self.model = classifier
        self.prepared_mask = backbone.takes_prepared_masks(classifier)
        self.template = PairTemplate(tokenizer, config.max_length)
        self.pad_id = tokenizer.pad_token_id
        self.batch_size = config.batch_size

    def prepare(self, data: TaskData) -> None:
        self.train = self.template.encode(data.train)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train) / self.batch_size)

    def to(self, device: torch.device) -> None:
        self.model.to(device)

    def training_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        batches = view_batches((self.train,), self.batch_size, generator)
        return (join(parts, self.pad_id) for parts in batches)

    def _logits(self, batch: Batch) -> torch.Tensor:
        """The classifier's logits, its rows in groups of similar length (in_length_groups)."""
        return in_length_groups(batch, lambda part, rows: self._group_logits(part))

    def _group_logits(self, batch: Batch) -> torch.Tensor:
        embeddings = self.model.get_input_embeddings()(batch.input_ids)
        inputs = backbone.encoder_inputs(self.model, embeddings, batch, self.prepared_mask)
        return self.model(**inputs).logits

    def loss(self, step: Batch) -> Losses:
        ce = cross_entropy(self._logits(step), step.labels)
        return Losses(total=ce, ce=ce)

    def encode(self, examples: Sequence[Example], language: str) -> list[Encoded]:
        return self.template.encode(examples)

    def predict(self, batch: Batch, language: str) -> torch.Tensor:
        return self._logits(batch).argmax(-1)


METHODS = {
    Method.FT: FineTuningMethod,
    Method.SP: SoftPromptMethod,
    Method.PCT: CrossLingualTemplateMethod,
    Method.MPT: SoftPromptMethod,
}


def load_backbone(config: RunConfig, tokenizer, labels: int) -> torch.nn.Module:
    """The pretrained model a run starts from: with a classification head for FT, the masked LM
    with its MLM head for the prompt methods."""
    if config.method is Method.FT:
        return backbone.load_classifier(config.model, tokenizer, labels=labels)
    return backbone.load_masked_lm(config.model, tokenizer)


def build_method(
    config: RunConfig, tokenizer, data: TaskData | None = None, model=None
) -> TrainingMethod:
    """The method of a run. Its backbone is loaded from config.model unless given (a checkpoint);
    with `data`, its training data is encoded too."""
    task = load_task(config.task)
    if model is None:
        model = load_backbone(config, tokenizer, len(task.labels))
    method = METHODS[config.method](config, tokenizer, model, task)
    if data is not None:
        method.prepare(data)
    return method

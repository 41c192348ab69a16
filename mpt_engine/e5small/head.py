"""Fitting the MLM head that multilingual-e5-small lacks: W_lh of Eq. (2) is BERT's transform
(dense, GELU, layer norm) and a projection onto the vocabulary tied to the word embeddings, plus a
bias. With the encoder frozen, masked-language modelling on unlabelled multilingual text fits the
transform and the bias; the encoder's states at the masked positions are computed once, so each
pass over them costs only the head.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

MASK_RATE = 0.2  # a little above BERT's 15%: more targets per pass of the frozen encoder
MAX_TOKENS = 128
HELD_OUT_EVERY = 10  # every 10th sentence of a language measures the head, the rest fit it


@dataclass(frozen=True)
class HeadFit:
    epochs: int = 8
    batch_tokens: int = 512
    lr: float = 1e-2
    seed: int = 0


def fit_head(
    masked_lm, tokenizer, texts: Mapping[str, Sequence[str]], fit: HeadFit = HeadFit()
) -> dict[str, float]:
    """Fit the head in place; the masked-token accuracy (%) on held-out sentences per language."""
    generator = torch.Generator().manual_seed(fit.seed)
    fitting, held_out = [], {}
    for language, sentences in texts.items():
        states, sentence_of, targets = masked_states(masked_lm, tokenizer, sentences, generator)
        keep = sentence_of % HELD_OUT_EVERY != 0
        fitting.append((states[keep], targets[keep]))
        held_out[language] = (states[~keep], targets[~keep])
    hidden = torch.cat([pair[0] for pair in fitting])
    targets = torch.cat([pair[1] for pair in fitting])
    corpus = tokenizer([s for sentences in texts.values() for s in sentences])["input_ids"]
    candidates = _prepare_head(masked_lm, corpus)
    _train_head(masked_lm, hidden, targets, candidates, fit, generator)
    return {language: accuracy(masked_lm, *pair) for language, pair in held_out.items()}


def head_parameters(masked_lm) -> list[torch.nn.Parameter]:
    predictions = masked_lm.cls.predictions
    return [*predictions.transform.parameters(), predictions.bias]


@torch.inference_mode()
def masked_states(masked_lm, tokenizer, sentences: Sequence[str], generator: torch.Generator):
    """Mask MASK_RATE of each sentence's tokens (at least one); the frozen encoder's final states
    at the masked positions (N, d), the sentence each comes from (N,) and its token id (N,)."""
    encoder = masked_lm.base_model.eval()
    encoded = tokenizer(list(sentences), truncation=True, max_length=MAX_TOKENS)["input_ids"]
    special = set(tokenizer.all_special_ids)
    hidden, targets, sentence_of = [], [], []
    order = sorted(range(len(encoded)), key=lambda index: len(encoded[index]))
    for start in range(0, len(order), 64):
        batch = [encoded[index] for index in order[start : start + 64]]
        inputs, original, chosen = _mask_batch(batch, special, tokenizer, generator)
        states = encoder(**inputs).last_hidden_state
        hidden.append(states[chosen])
        targets.append(original[chosen])
        rows = chosen.nonzero()[:, 0]
        sentence_of.append(torch.tensor(order[start : start + 64])[rows])
    return torch.cat(hidden), torch.cat(sentence_of), torch.cat(targets)


def _mask_batch(batch: list[list[int]], special: set[int], tokenizer, generator):
    length = max(map(len, batch))
    ids = torch.full((len(batch), length), tokenizer.pad_token_id)
    attention = torch.zeros((len(batch), length), dtype=torch.long)
    chosen = torch.zeros((len(batch), length), dtype=torch.bool)
    for row, tokens in enumerate(batch):
        ids[row, : len(tokens)] = torch.tensor(tokens)
        attention[row, : len(tokens)] = 1
        candidates = [index for index, token in enumerate(tokens) if token not in special]
        draws = torch.rand(len(candidates), generator=generator) < MASK_RATE
        if candidates and not draws.any():
            draws[torch.randint(len(candidates), (1,), generator=generator)] = True
        chosen[row, torch.tensor(candidates, dtype=torch.long)[draws]] = True
    inputs = {"input_ids": ids.masked_fill(chosen, tokenizer.mask_token_id)}
    return {**inputs, "attention_mask": attention}, ids, chosen


def _prepare_head(masked_lm, corpus: list[list[int]]) -> torch.Tensor:
    """Start from an identity transform and a unigram prior: the bias of each piece is the log of
    its smoothed frequency in the fitting text, so a piece the text never shows stays unlikely.
    Returns the pieces the text does show: the softmax of the fit runs over those alone."""
    predictions = masked_lm.cls.predictions
    with torch.no_grad():
        predictions.transform.dense.weight.copy_(torch.eye(predictions.transform.dense.in_features))
        predictions.transform.dense.bias.zero_()
        counts = torch.bincount(
            torch.tensor([token for ids in corpus for token in ids]),
            minlength=predictions.bias.numel(),
        ).float()
        predictions.bias.copy_(torch.log((counts + 0.1) / counts.sum()))
    return counts.nonzero().squeeze(-1)


def _head_logits(masked_lm, hidden: torch.Tensor, weight=None, rows=None) -> torch.Tensor:
    """Eq. (2)'s W_lh: the transform, then the decoder (all rows, or the given ones)."""
    predictions = masked_lm.cls.predictions
    if weight is None:
        weight, rows = predictions.decoder.weight, slice(None)
    return F.linear(predictions.transform(hidden), weight, predictions.bias[rows])


def _train_head(masked_lm, hidden, targets, candidates, fit: HeadFit, generator) -> None:
    """Softmax over the candidate pieces (targets re-indexed into them). The decoder is tied to
    the word embeddings, which stay frozen, so their candidate rows are gathered once."""
    embeddings = masked_lm.get_input_embeddings().weight
    weight = embeddings.detach()[candidates]
    index_of = torch.full((embeddings.shape[0],), -1, dtype=torch.long)
    index_of[candidates] = torch.arange(len(candidates))
    local_targets = index_of[targets]
    optimizer = torch.optim.Adam(head_parameters(masked_lm), lr=fit.lr)
    steps = fit.epochs * -(-len(targets) // fit.batch_tokens)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / steps)
    masked_lm.train()
    for _ in range(fit.epochs):
        order = torch.randperm(len(targets), generator=generator)
        for start in range(0, len(order), fit.batch_tokens):
            chosen = order[start : start + fit.batch_tokens]
            logits = _head_logits(masked_lm, hidden[chosen], weight, candidates)
            F.cross_entropy(logits, local_targets[chosen]).backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
    masked_lm.eval()


@torch.inference_mode()
def accuracy(masked_lm, hidden: torch.Tensor, targets: torch.Tensor) -> float:
    correct = sum(
        (_head_logits(masked_lm, hidden[i : i + 512]).argmax(-1) == targets[i : i + 512]).sum()
        for i in range(0, len(targets), 512)
    )  # over the whole vocabulary
    return round(100.0 * float(correct) / max(len(targets), 1), 2)

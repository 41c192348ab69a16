"""What the e5-small build changed, measured on held-out XNLI dev rows (never trained on):
masked-token accuracy per language, the label words' share of the mask's probability under each
prompt method's template before any prompt training, and cross-lingual translation retrieval
(whether continued training kept what makes transfer work)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from mpt_engine.config import Method, RunConfig
from mpt_engine.data.examples import Example
from mpt_engine.e5small.head import accuracy, masked_states
from mpt_engine.evaluate import CPU_BATCH_TOKENS, eval_batches

HELD_OUT_EVERY = 10  # rows 0, 10, 20, ... of each language's dev file: never trained on
LABEL_MASS_ROWS = 100  # held-out rows a language's label-word mass is the mean over


def held_out(rows: Sequence[Example]) -> list[Example]:
    return list(rows[::HELD_OUT_EVERY])


def masked_token_accuracy(
    masked_lm, tokenizer, sentences: Mapping[str, Sequence[str]], seed: int = 0
) -> dict[str, float]:
    """Per language, % of masked pieces whose argmax over the whole vocabulary is right."""
    generator = torch.Generator().manual_seed(seed)
    scores = {}
    for language, texts in sentences.items():
        hidden, _, targets = masked_states(masked_lm, tokenizer, texts, generator)
        scores[language] = accuracy(masked_lm, hidden, targets)
    return scores


@torch.inference_mode()
def retrieval_accuracy(
    masked_lm, tokenizer, sentences: Mapping[str, Sequence[str]], source: str = "en"
) -> dict[str, float]:
    """Per target language, % of source sentences whose nearest target sentence (cosine of
    mean-pooled final states, as e5 embeds) is their translation (the rows are parallel)."""
    embedded = {
        language: _embed(masked_lm, tokenizer, texts) for language, texts in sentences.items()
    }
    queries = embedded[source]
    scores = {}
    for language, keys in embedded.items():
        if language == source:
            continue
        nearest = (queries @ keys.T).argmax(-1)
        scores[language] = round(
            100.0 * float((nearest == torch.arange(len(keys))).float().mean()), 2
        )
    return scores


def _embed(masked_lm, tokenizer, texts: Sequence[str]) -> torch.Tensor:
    encoder = masked_lm.base_model.eval()
    rows = []
    for start in range(0, len(texts), 64):
        inputs = tokenizer(
            list(texts[start : start + 64]),
            padding=True,
            truncation=True,
            max_length=128,
            return_tensors="pt",
        )
        states = encoder(**inputs).last_hidden_state
        mask = inputs["attention_mask"][..., None].float()
        rows.append(torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1))
    return torch.cat(rows)


@torch.inference_mode()
def label_word_mass(
    masked_lm, tokenizer, examples: Mapping[str, Sequence[Example]], seed: int = 1
) -> dict[str, float]:
    """The mean probability (%) the mask gives the label words, before any prompt training:
    SP/MPT's cloze template with p^S freshly initialised (seed), in English; PCT's template in
    each language (its label words over the whole vocabulary, as PCT predicts)."""
    from mpt_engine.methods import build_method

    masses = {}
    for method in (Method.SP, Method.PCT):
        torch.manual_seed(seed)
        config = RunConfig(method=method, model="e5-small", seed=seed).resolved()
        built = build_method(config, tokenizer, model=masked_lm)
        built.model.eval()
        languages = ["en"] if method is Method.SP else list(examples)
        prompt = (built.model.source_prompt(),) if method is Method.SP else ()
        shares = []
        for language in languages:
            rows = examples[language][:LABEL_MASS_ROWS]
            for batch in eval_batches(built, rows, language, 64, CPU_BATCH_TOKENS).batches:
                probabilities = built.model(batch, *prompt).float().softmax(-1)
                shares.append(probabilities[:, built.label_ids].sum(-1))
        masses["SP/MPT" if method is Method.SP else "PCT"] = round(
            100.0 * float(torch.cat(shares).mean()), 2
        )
    return masses

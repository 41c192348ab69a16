"""The baselines' way (Zhao & Schütze's xlmrprompt, PCT): every example padded to 256 tokens,
the prompt written into the embeddings with a Python loop, the masked LM's logits computed at
every position over the whole vocabulary, fp32, evaluation batch 4. Same weights and the same
templates as our path, so both must give the same predictions; only the work differs."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mpt_engine.encoding import Encoded
from mpt_engine.losses import cross_entropy, symmetric_kl, total_loss

STATIC_LENGTH = 256
EVAL_BATCH = 4
MICRO_BATCH = 4  # xlmrprompt's per-device batch (4 x 3 GPUs); gradients accumulate to 24


def static_batch(examples: Sequence[Encoded], pad_id: int, device) -> dict[str, torch.Tensor]:
    """Pad every example to 256 tokens, as the baselines' preprocessors do."""
    ids = torch.full((len(examples), STATIC_LENGTH), pad_id, dtype=torch.long)
    attention = torch.zeros_like(ids)
    for row, example in enumerate(examples):
        ids[row, : len(example.input_ids)] = torch.tensor(example.input_ids)
        attention[row, : len(example.input_ids)] = 1
    return {
        "input_ids": ids.to(device),
        "attention_mask": attention.to(device),
        "mask_positions": torch.tensor([e.mask_position for e in examples], device=device),
        "prompt_positions": [e.prompt_positions for e in examples],
        "labels": torch.tensor([e.label for e in examples], device=device),
    }


def vocabulary_logits(model, batch, prompt: torch.Tensor) -> torch.Tensor:
    """MLM logits over the whole vocabulary at every position (B, 256, |V|), then the mask's."""
    masked_lm = model.masked_lm
    embeddings = masked_lm.get_input_embeddings()(batch["input_ids"]).clone()
    for row, positions in enumerate(batch["prompt_positions"]):  # the baselines' double loop
        for slot, position in enumerate(positions):
            embeddings[row, position] = prompt[slot]
    logits = masked_lm(inputs_embeds=embeddings, attention_mask=batch["attention_mask"]).logits
    return logits[torch.arange(len(logits), device=logits.device), batch["mask_positions"]]


@torch.no_grad()
def predict(method, encoded: Sequence[Encoded], language: str, device) -> list[int]:
    """Label predictions, batch 4, in input order (no length sorting)."""
    method.model.eval()
    source = language == "en"
    prompt = method.model.source_prompt() if source else method.model.target_prompt()
    label_ids = method.label_ids.to(device)
    predictions: list[int] = []
    for start in range(0, len(encoded), EVAL_BATCH):
        batch = static_batch(encoded[start : start + EVAL_BATCH], method.pad_id, device)
        predictions += (
            vocabulary_logits(method.model, batch, prompt)[:, label_ids].argmax(-1).tolist()
        )
    return predictions


def train_micro_step(
    method, english: Sequence[Encoded], source: Sequence[Encoded], target: Sequence[Encoded], device
) -> float:
    """Forward and backward of one micro-batch of MPT's step (CE batch and KL pair batch)."""
    method.model.train()
    model, label_ids = method.model, method.label_ids.to(device)
    source_prompt = model.source_prompt()
    english_batch = static_batch(english, method.pad_id, device)
    ce = cross_entropy(
        vocabulary_logits(model, english_batch, source_prompt)[:, label_ids],
        english_batch["labels"],
    )
    kl = symmetric_kl(
        vocabulary_logits(model, static_batch(source, method.pad_id, device), source_prompt),
        vocabulary_logits(
            model, static_batch(target, method.pad_id, device), model.target_prompt()
        ),
    )
    loss = total_loss(ce, kl, method.alpha)
    loss.backward()
    return loss.item()

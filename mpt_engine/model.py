"""A masked LM with soft-prompt slots and a prompt translator (Fig. 2)."""

from __future__ import annotations

import torch
from torch import nn

from mpt_engine.backbone import VocabularyHead, encoder_inputs, takes_prepared_masks
from mpt_engine.config import TranslatorKind
from mpt_engine.encoding import Batch, in_length_groups
from mpt_engine.modules import PromptEncoder, build_translator


class PromptedMaskedLM(nn.Module):
    """The PLM M with the prompt encoder (p^S) and the translator (p^T = Transl(p^S)).

    Without a prompt length it is a plain masked LM (PCT's hard templates).
    """

    def __init__(
        self,
        masked_lm: nn.Module,
        prompt_length: int | None = None,
        translator: TranslatorKind | None = None,
    ):
        super().__init__()
        self.masked_lm = masked_lm
        config = masked_lm.config
        self.prompt_encoder = (
            PromptEncoder(prompt_length, config.hidden_size) if prompt_length else None
        )
        self.translator = build_translator(
            translator or TranslatorKind.NONE,
            config.hidden_size,
            config.num_attention_heads,
            prompt_length,
        )
        self.head = VocabularyHead(masked_lm)
        self.prepared_mask = takes_prepared_masks(masked_lm.base_model)

    def source_prompt(self) -> torch.Tensor:
        """p^S, (m, d)."""
        return self.prompt_encoder()

    def target_prompt(self) -> torch.Tensor:
        """p^T = Transl(p^S), Eq. (4), (m, d)."""
        return self.translator(self.source_prompt())

    def forward(
        self, batch: Batch, prompt: torch.Tensor | None = None, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """W_lh h_X at [MASK] only (Eq. 2 and 6 before the softmax): (B, |V|), or (B, n) for the
        vocabulary rows `rows` (the label words: W_Z of Eq. 2)."""
        return self.head(self.mask_states(batch, prompt), rows)

    def mask_states(self, batch: Batch, prompt: torch.Tensor | None = None) -> torch.Tensor:
        """h_X at [MASK], (B, d), with the prompt (m, d), or one per example (B, m, d), written
        into its slots; the rows run in groups of similar length (in_length_groups)."""

        def encode(part: Batch, rows: list[int] | None) -> torch.Tensor:
            own = prompt if rows is None or prompt is None or prompt.dim() == 2 else prompt[rows]
            return self._mask_states(part, own)

        return in_length_groups(batch, encode)

    def _mask_states(self, batch: Batch, prompt: torch.Tensor | None) -> torch.Tensor:
        embeddings = self.masked_lm.get_input_embeddings()(batch.input_ids)
        if prompt is not None:
            examples = torch.arange(len(embeddings), device=embeddings.device)[:, None]
            embeddings = embeddings.index_put(
                (examples, batch.prompt_positions),
                prompt.to(embeddings.dtype).expand(len(embeddings), -1, -1),
            )
        encoder = self.masked_lm.base_model
        inputs = encoder_inputs(encoder, embeddings, batch, self.prepared_mask)
        hidden = encoder(**inputs).last_hidden_state
        return hidden[torch.arange(len(hidden), device=hidden.device), batch.mask_positions]

"""The trainable prompt machinery: the prompt encoder of SP and the translators of MPT."""

from __future__ import annotations

import torch
from torch import nn

from mpt_engine.config import TranslatorKind


class PromptEncoder(nn.Module):
    """p = MLP(BiLSTM(Embedding(0..m-1))): the soft prompt of Sec. III-A, shaped as in Zhao &
    Schütze's code (one BiLSTM layer of width d, MLP 2d -> d -> d)."""

    def __init__(self, prompt_length: int, hidden_size: int):
        super().__init__()
        self.embedding = nn.Embedding(prompt_length, hidden_size)
        self.lstm = nn.LSTM(hidden_size, hidden_size, bidirectional=True, batch_first=True)
        self.mlp = nn.Sequential(
            nn.Linear(2 * hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, hidden_size)
        )
        self.register_buffer("slots", torch.arange(prompt_length), persistent=False)

    def forward(self) -> torch.Tensor:
        """(m, d): the source prompt p^S."""
        states, _ = self.lstm(self.embedding(self.slots)[None])
        return self.mlp(states[0])


class LinearTranslator(nn.Module):
    """Eq. (4): p^T = W_down ReLU(W_up p^S + b_up) + b_down, with W_up in R^{d x 2d}
    (Linear-2); Linear-1 is a single d x d map."""

    def __init__(self, hidden_size: int, layers: int):
        super().__init__()
        if layers == 1:
            self.net = nn.Linear(hidden_size, hidden_size)
        else:
            self.net = nn.Sequential(
                nn.Linear(hidden_size, 2 * hidden_size),
                nn.ReLU(),
                nn.Linear(2 * hidden_size, hidden_size),
            )

    def forward(self, source_prompt: torch.Tensor) -> torch.Tensor:
        return self.net(source_prompt)


class LSTMTranslator(nn.Module):
    """Ablation: an LSTM reading the m prompt vectors in order."""

    def __init__(self, hidden_size: int, layers: int):
        super().__init__()
        self.lstm = nn.LSTM(hidden_size, hidden_size, num_layers=layers, batch_first=True)

    def forward(self, source_prompt: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(source_prompt[None])
        return states[0]


class TransformerTranslator(nn.Module):
    """Ablation: Transformer encoder layers over the m prompt vectors.

    The layers are pre-LN and residual, p <- p + Attention(LN(p)), p <- p + FFN(LN(p)), with
    each branch's output projection initialised to zero, so that Transl(p^S) = p^S at
    initialisation. Standard post-LN layers end in a LayerNorm, whose output rows have norm
    sqrt(d) whatever the size of p^S: about 26 times |p^S| at initialisation for XLM-R base,
    where the linear and LSTM translators start between 0.3 and 0.8 times |p^S|. Starting at the
    scale of p^S keeps the translator ablation a comparison of architectures."""

    def __init__(self, hidden_size: int, layers: int, heads: int):
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            hidden_size,
            heads,
            dim_feedforward=2 * hidden_size,
            dropout=0.0,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        for block in self.encoder.layers:  # (the encoder holds copies of `layer`)
            for projection in (block.self_attn.out_proj, block.linear2):
                nn.init.zeros_(projection.weight)
                nn.init.zeros_(projection.bias)

    def forward(self, source_prompt: torch.Tensor) -> torch.Tensor:
        return self.encoder(source_prompt[None])[0]


class SeparatePrompt(nn.Module):
    """Ablation, the other reading of "w/o prompt translator" (the paper: "target prompt makes
    it hard to learn task knowledge without translator"): nothing is translated; p^T is a
    prompt of its own, a second prompt encoder that only the KL term trains."""

    def __init__(self, prompt_length: int, hidden_size: int):
        super().__init__()
        self.encoder = PromptEncoder(prompt_length, hidden_size)

    def forward(self, source_prompt: torch.Tensor) -> torch.Tensor:
        return self.encoder()


def build_translator(
    kind: TranslatorKind, hidden_size: int, heads: int, prompt_length: int | None
) -> nn.Module:
    """The translator for an ablation setting; NONE gives the identity (p^T = p^S)."""
    kind = TranslatorKind(kind)
    if kind is TranslatorKind.NONE:
        return nn.Identity()
    if kind is TranslatorKind.SEPARATE:
        return SeparatePrompt(prompt_length, hidden_size)
    family, layers = kind.value.rsplit("-", 1)
    if family == "linear":
        return LinearTranslator(hidden_size, int(layers))
    if family == "lstm":
        return LSTMTranslator(hidden_size, int(layers))
    return TransformerTranslator(hidden_size, int(layers), heads)

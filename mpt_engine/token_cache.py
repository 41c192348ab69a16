"""Tokenised text cached on disk, so the 150,300 test sentences of XNLI are tokenised once per
tokenizer, not once per run (a grid of 180 runs would otherwise spend minutes on it)."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mpt_engine.paths import cache_entry, cached

MIN_TEXTS = 500  # smaller lists are tokenised directly: cheaper than a file


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of the whole tokenizer (model, normaliser, pre-tokeniser, added tokens): the key of
    its cached token ids and, in record.json, what tells runs with different tokenizers apart."""
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()[:16]


def tokenize(tokenizer, texts: Sequence[str], fingerprint: str | None = None) -> list[list[int]]:
    """Token ids of each text, without special tokens; cached when a fingerprint is given."""
    texts = list(texts)
    if fingerprint is None or len(texts) < MIN_TEXTS:
        return tokenizer(texts, add_special_tokens=False)["input_ids"]
    digest = hashlib.sha256(fingerprint.encode())
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    path = cache_entry("tokens") / f"{digest.hexdigest()[:32]}.npz"

    def build(temporary: Path) -> None:
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
        with temporary.open("wb") as file:
            np.savez(
                file,
                ids=np.fromiter((t for row in ids for t in row), dtype=np.int32),
                offsets=np.cumsum([0, *map(len, ids)]),
            )

    def load(stored_path: Path) -> list[list[int]]:
        with np.load(stored_path) as stored:
            flat, offsets = stored["ids"].tolist(), stored["offsets"].tolist()
        return [flat[start:end] for start, end in itertools.pairwise(offsets)]

    return cached(path, build, load)

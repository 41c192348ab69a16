"""Tokenised text cached on disk, so the 150,300 test sentences of XNLI are tokenised once per
tokenizer, not once per run (a grid of 180 runs would otherwise spend minutes on it)."""

from __future__ import annotations

import hashlib
import itertools
import os
import tempfile
from collections.abc import Sequence

import numpy as np

from mpt_engine.paths import cache_dir

MIN_TEXTS = 500  # smaller lists are tokenised directly: cheaper than a file


def fingerprint(tokenizer) -> str:
    """A hash of the whole tokenizer (model, normaliser, pre-tokeniser, added tokens)."""
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()[:24]


def tokenize(
    tokenizer, texts: Sequence[str], tokenizer_fingerprint: str | None = None
) -> list[list[int]]:
    """Token ids of each text, without special tokens; cached when a fingerprint is given."""
    texts = list(texts)
    if tokenizer_fingerprint is None or len(texts) < MIN_TEXTS:
        return tokenizer(texts, add_special_tokens=False)["input_ids"]
    digest = hashlib.sha256(tokenizer_fingerprint.encode())
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    path = cache_dir() / "tokens" / f"{digest.hexdigest()[:32]}.npz"
    try:
        with np.load(path) as stored:
            flat, offsets = stored["ids"].tolist(), stored["offsets"].tolist()
        return [flat[start:end] for start, end in itertools.pairwise(offsets)]
    except (OSError, ValueError, KeyError):
        pass  # not cached yet, or a damaged file: tokenise again
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    offsets = np.cumsum([0, *map(len, ids)])
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    with os.fdopen(handle, "wb") as file:
        np.savez(
            file, ids=np.fromiter((t for row in ids for t in row), dtype=np.int32), offsets=offsets
        )
    os.replace(temporary, path)
    return ids

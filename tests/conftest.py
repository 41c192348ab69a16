"""Shared fixtures: an isolated run store, a shared tokenizer cache, tiny models built in code."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mpt-cache")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path, cache_root):
    """Every test gets its own run store; tiny tokenizers are cached once per session.

    The hub is marked offline so that nothing here can reach for the network."""
    monkeypatch.setenv("MPT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MPT_CACHE", str(cache_root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MPT_DATA_DIR", raising=False)


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "xnli").is_dir():
        pytest.skip(f"staged data not found at {SHARED_DATA} (see shared/data/README.md)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tokenizer(cache_root):
    """A tiny XLM-R-format tokenizer trained on the synthetic sample and real-looking text."""
    import os

    os.environ["MPT_CACHE"] = str(cache_root)
    from mpt_engine.backbone import tiny_tokenizer
    from mpt_engine.data.synthetic import SyntheticSource

    source = SyntheticSource()
    corpus = [
        text
        for language in ("en", "de", "zh")
        for example in source.xnli("dev", language)[:200]
        for text in (example.premise, example.hypothesis)
    ]
    corpus += ["The cat sat on the mat. Was it right? Maybe it was wrong!"] * 20
    return tiny_tokenizer(corpus)


@pytest.fixture
def masked_lm(tokenizer):
    import torch
    from transformers import XLMRobertaForMaskedLM

    from mpt_engine.backbone import tiny_config

    torch.manual_seed(0)
    return XLMRobertaForMaskedLM(tiny_config(tokenizer)).eval()

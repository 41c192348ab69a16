"""`mpt data build-paws15` with a tiny random seq2seq model built here, and its use."""

import json
import os
import subprocess
import sys

import pytest

from mpt_engine.data.aux import paws15_path, read_pairs
from mpt_engine.data.synthetic import SyntheticSource
from mpt_engine.languages import TARGET_LANGUAGES
from mpt_engine.paws15 import NLLB_CODES, choose_pairs
from tests.helpers import hand_built_tokenizer, mpt, mpt_json


@pytest.fixture(scope="module")
def translation_model(tmp_path_factory):
    """An M2M100 (NLLB's architecture) with random weights and a tokenizer knowing NLLB's codes."""
    import torch
    from tokenizers import decoders, models, pre_tokenizers, processors, trainers
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    folder = tmp_path_factory.mktemp("tiny-nllb")
    specials = ["<s>", "<pad>", "</s>", "<unk>", *NLLB_CODES.values()]
    tokenizer = hand_built_tokenizer(
        models.BPE(unk_token="<unk>"),
        trainers.BpeTrainer(vocab_size=100, special_tokens=specials),
        ["the farmer sees the house today ."] * 10,
        {
            "pre_tokenizer": pre_tokenizers.Metaspace(),
            "decoder": decoders.Metaspace(),
            "post_processor": processors.TemplateProcessing(
                single="$A </s>", special_tokens=[("</s>", 2)]
            ),
        },
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    config = M2M100Config(
        vocab_size=len(tokenizer),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=300,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    torch.manual_seed(0)
    M2M100ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_choose_pairs_is_seeded():
    english = SyntheticSource().pawsx("en")
    first = choose_pairs(english, 50, seed=0)
    assert first == choose_pairs(english, 50, seed=0)
    assert first != choose_pairs(english, 50, seed=1)
    assert {language for _, language in first} <= set(TARGET_LANGUAGES)
    assert len({language for _, language in choose_pairs(english, 500, seed=0)}) == 14


def test_build_writes_corpus_and_manifest_then_runs_use_it(capsys, translation_model):
    build = (
        "data",
        "build-paws15",
        "--model",
        translation_model,
        "--size",
        "24",
        "--data",
        "synthetic",
        "--beams",
        "1",
    )
    code, _, err = mpt(capsys, *build)
    assert code == 0, err
    pairs = read_pairs(paws15_path())
    assert len(pairs) == 24
    assert all(pair.target.premise != pair.source.premise for pair in pairs)
    manifest = json.loads(paws15_path().with_name("manifest.json").read_text())
    assert (manifest["model"], manifest["seed"], manifest["size"]) == (
        str(translation_model),
        0,
        24,
    )
    assert sum(manifest["languages"].values()) == 24
    assert set(manifest["languages"]) <= set(TARGET_LANGUAGES)
    assert manifest["languages"] == {
        lang: sum(p.language == lang for p in pairs) for lang in manifest["languages"]
    }

    code, _, err = mpt(capsys, *build)
    assert code == 0 and "already built" in err
    for unreadable in ("garbage", "[1]"):  # a cache file of ours: built again, not a traceback
        paws15_path().with_name("manifest.json").write_text(unreadable)
        code, _, err = mpt(capsys, *build)
        assert code == 0 and "wrote 24 pairs" in err and read_pairs(paws15_path()) == pairs

    events = mpt_json(
        capsys,
        "run",
        "--preset",
        "smoke",
        "--aux",
        "paws15",
        "--aux-size",
        "24",
        "--epochs",
        "1",
        "--json",
    )
    assert events[-1]["config"]["aux"] == "paws15"


def test_paws15_missing_says_how_to_build_it(capsys):
    code, _, err = mpt(capsys, "run", "--preset", "smoke", "--aux", "paws15")
    assert code == 3 and "mpt data build-paws15" in err


def test_offline_build_fails_with_exit_code_3(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    completed = subprocess.run(
        [sys.executable, "-m", "mpt_tui", "data", "build-paws15"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert completed.returncode == 3
    assert "facebook/nllb-200-distilled-600M" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1

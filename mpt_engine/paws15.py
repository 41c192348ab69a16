"""PAWS-15 rebuilt with an open machine-translation model (the paper used Google Translate).

500 English PAWS-X pairs, each translated into one of the 14 target languages drawn at random
with a seed, written as an auxiliary-pairs JSONL (data/aux.py) with a manifest of model, seed
and counts. `--aux paws15` then reads it.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from mpt_engine import backbone
from mpt_engine.data.aux import PAIR_FIELDS, paws15_path
from mpt_engine.data.examples import Example
from mpt_engine.errors import InvalidInput
from mpt_engine.languages import SOURCE_LANGUAGE, TARGET_LANGUAGES
from mpt_engine.paths import home
from mpt_engine.record import now
from mpt_engine.safe_files import write_atomic, write_json

DEFAULT_MODEL = "facebook/nllb-200-distilled-600M"
# FLORES-200 codes, as NLLB names languages.
NLLB_CODES = {
    "ar": "arb_Arab", "bg": "bul_Cyrl", "de": "deu_Latn", "el": "ell_Grek", "en": "eng_Latn",
    "es": "spa_Latn", "fr": "fra_Latn", "hi": "hin_Deva", "ru": "rus_Cyrl", "sw": "swh_Latn",
    "th": "tha_Thai", "tr": "tur_Latn", "ur": "urd_Arab", "vi": "vie_Latn", "zh": "zho_Hans",
}  # fmt: skip
MODEL_HINT = "pass {model} PATH to a local translation model folder"


def choose_pairs(english: dict, size: int, seed: int) -> list[tuple[Example, str]]:
    """`size` English pairs, each with a target language drawn at random, both seeded."""
    if len(english) < size:
        raise InvalidInput(f"only {len(english)} English PAWS-X pairs, fewer than {{size}} {size}")
    rng = random.Random(seed)
    keys = rng.sample(sorted(english), size)
    return [(english[key], rng.choice(TARGET_LANGUAGES)) for key in keys]


def build(
    source,
    model: str = DEFAULT_MODEL,
    size: int = 500,
    seed: int = 0,
    device: str = "auto",
    batch_size: int = 16,
    beams: int = 4,
    output: Path | None = None,
) -> Path:
    """Translate and write the corpus and its manifest; returns the JSONL path."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from mpt_engine.device import resolve_device

    output = output or paws15_path()
    target_device = resolve_device(device)  # a bad --device before a model is loaded
    tokenizer = backbone.load_pretrained(AutoTokenizer.from_pretrained, model, MODEL_HINT)
    translator = backbone.load_pretrained(AutoModelForSeq2SeqLM.from_pretrained, model, MODEL_HINT)
    chosen = choose_pairs(source.pawsx(SOURCE_LANGUAGE), size, seed)
    translator.to(target_device).eval()
    if hasattr(tokenizer, "src_lang"):
        tokenizer.src_lang = NLLB_CODES[SOURCE_LANGUAGE]

    translated: dict[int, Example] = {}
    for language in sorted({language for _, language in chosen}):
        indices = [i for i, (_, lang) in enumerate(chosen) if lang == language]
        sentences = [
            text for i in indices for text in (chosen[i][0].premise, chosen[i][0].hypothesis)
        ]
        with torch.inference_mode():
            outputs = _translate(
                tokenizer, translator, sentences, language, batch_size, beams, target_device
            )
        for position, index in enumerate(indices):
            translated[index] = Example(outputs[2 * position], outputs[2 * position + 1])

    rows = []
    for index, (english, language) in enumerate(chosen):
        values = (
            english.premise,
            english.hypothesis,
            translated[index].premise,
            translated[index].hypothesis,
        )
        rows.append(
            json.dumps(
                {**dict(zip(PAIR_FIELDS, values, strict=True)), "language": language},
                ensure_ascii=False,
            )
        )
    # In the store (the default) no symbolic link below $MPT_HOME is followed.
    root = home() if output.is_relative_to(home()) else None
    if root is None:
        output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(output, "\n".join(rows) + "\n", root)
    manifest = {
        "model": model,
        "seed": seed,
        "size": size,
        "beams": beams,
        "english_source": f"PAWS-X ({source.name})",
        "languages": dict(sorted(Counter(language for _, language in chosen).items())),
        "created_at": now(),
    }
    write_json(output.with_name("manifest.json"), manifest, root)
    return output


def _translate(
    tokenizer, model, sentences: Sequence[str], language: str, batch_size: int, beams: int, device
) -> list[str]:
    code = NLLB_CODES[language]
    code_id = tokenizer.convert_tokens_to_ids(code)
    if code_id is None or code_id == tokenizer.unk_token_id:
        raise InvalidInput(f"the translation model has no language code {code}; use an NLLB model")
    results: list[str] = []
    for start in range(0, len(sentences), batch_size):
        batch = tokenizer(
            list(sentences[start : start + batch_size]),
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=256,
        )
        generated = model.generate(
            input_ids=batch["input_ids"].to(device),
            attention_mask=batch["attention_mask"].to(device),
            forced_bos_token_id=code_id,
            num_beams=beams,
            max_new_tokens=256,
        )
        results.extend(tokenizer.batch_decode(generated, skip_special_tokens=True))
    return results

"""Running the `mpt` console script inside the test process."""

import json
import os
from pathlib import Path

import pytest

from mpt_tui.cli import main


def mpt(capsys, *args):
    """Run `mpt ARGS`; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def mpt_json(capsys, *args):
    """Run a command that prints JSON (one document or NDJSON) and parse its stdout."""
    code, out, err = mpt(capsys, *args)
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("{") and lines[0].endswith("}"):
        return [json.loads(line) for line in lines]
    return json.loads(out)


def mpt_rows(capsys, *args) -> list:
    """Run a command that prints NDJSON, one object per line, and parse every line."""
    code, out, err = mpt(capsys, *args)
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def runs_dir() -> Path:
    return Path(os.environ["MPT_HOME"], "runs")


def hand_built_tokenizer(model, trainer, corpus, parts, **tokens):
    """A tokenizer trained in the test: a `tokenizers` model and trainer, its pipeline `parts`
    (pre_tokenizer, post_processor, decoder...) and the special tokens transformers names."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(model)
    for name, part in parts.items():
        if name != "post_processor":
            setattr(backend, name, part)
    backend.train_from_iterator(corpus, trainer)
    backend.post_processor = parts["post_processor"]  # refers to ids the training assigned
    return PreTrainedTokenizerFast(tokenizer_object=backend, **tokens)


def bert_style_tokenizer():
    """A WordPiece tokenizer with BERT's [CLS] A [SEP] B [SEP] layout and segment ids."""
    from tokenizers import models, pre_tokenizers, processors, trainers

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return hand_built_tokenizer(
        models.WordPiece(unk_token="[UNK]"),
        trainers.WordPieceTrainer(special_tokens=specials),
        ["the cat sat . right wrong maybe ?"] * 5,
        {
            "pre_tokenizer": pre_tokenizers.BertPreTokenizer(),
            "post_processor": processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2)),
        },
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def tiny_bert(folder: Path) -> None:
    """A tiny random BERT masked LM with its WordPiece tokenizer, saved in `folder`."""
    from transformers import BertConfig, BertForMaskedLM
    from transformers.utils import logging

    logging.disable_progress_bar()  # "Writing model shards" would land in a test's stderr
    tokenizer = bert_style_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        pad_token_id=tokenizer.pad_token_id,
    )
    BertForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


# A user's own task: same-or-different colour statements in English, German and French.
COLOURS = {
    "en": ("red", "blue", "green", "black", "white", "yellow"),
    "de": ("rot", "blau", "grün", "schwarz", "weiß", "gelb"),
    "fr": ("rouge", "bleu", "vert", "noir", "blanc", "jaune"),
}
THINGS = {
    "en": ("The car is", "The house is", "The flower is", "The bird is"),
    "de": ("Das Auto ist", "Das Haus ist", "Die Blume ist", "Der Vogel ist"),
    "fr": ("La voiture est", "La maison est", "La fleur est", "L'oiseau est"),
}
TASK_FILE = """
name: colours
description: does the second statement give the thing the same colour? (a test task)
languages: [en, de, fr]
labels: [same, different]
fields: [first, second]
label_field: answer
verbalizer: {same: right, different: wrong}
pct:
  verbalizer: {same: "yes", different: "no"}
  templates:
    en: "question:{}? Answer:<mask>"
    de: "frage:{}? Antwort:<mask>"
    fr: "question:{}? réponse:<mask>"
families: {Germanic: [en, de], Romance: [fr]}
data:
  local:
    train: data/{language}-pool.jsonl
    dev: data/{language}-pool.jsonl
    test: data/{language}-test.jsonl
"""


def colour_rows(language: str, count: int, seed: int) -> list[dict]:
    import random

    rng = random.Random(seed)
    colours, things = COLOURS[language], THINGS[language]
    rows = []
    for index in range(count):
        thing = rng.randrange(len(things))
        first = rng.randrange(len(colours))
        same = index % 2 == 0
        second = first if same else (first + rng.randrange(1, len(colours))) % len(colours)
        rows.append(
            {
                "first": f"{things[thing]} {colours[first]}.",
                "second": f"{things[thing]} {colours[second]}",
                "answer": "same" if same else "different",
            }
        )
    return rows


def write_colour_task(folder: Path) -> Path:
    """A 3-language task file with its data beside it, and a parallel corpus (aux.jsonl)."""
    (folder / "data").mkdir(parents=True)
    for language in COLOURS:
        for name, count, seed in (("pool", 80, 1), ("test", 30, 2)):
            lines = [
                json.dumps(row, ensure_ascii=False) for row in colour_rows(language, count, seed)
            ]
            (folder / "data" / f"{language}-{name}.jsonl").write_text("\n".join(lines) + "\n")
    english = colour_rows("en", 40, 3)
    pairs = []
    for index, row in enumerate(english):
        language = ("de", "fr")[index % 2]
        target = colour_rows(language, 40, 3)[index]
        pairs.append(
            {
                "source_premise": row["first"],
                "source_hypothesis": row["second"],
                "target_premise": target["first"],
                "target_hypothesis": target["second"],
                "language": language,
            }
        )
    (folder / "aux.jsonl").write_text(
        "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs)
    )
    task = folder / "colours.yaml"
    task.write_text(TASK_FILE)
    return task

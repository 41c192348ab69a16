import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpt_engine.config import PromptPosition
from mpt_engine.data.examples import Example
from mpt_engine.encoding import SpecialTokens, collate, truncate_pair
from mpt_engine.errors import InvalidInput
from mpt_engine.prompts import (
    ClozeTemplate,
    CrossLingualTemplate,
    PairTemplate,
    label_word_ids,
)
from mpt_engine.tasks import load_task
from mpt_engine.token_cache import tokenize
from tests.helpers import bert_style_tokenizer

XNLI = load_task("xnli")
PCT_TEMPLATES = XNLI.pct_templates

EXAMPLE = Example("The cat sat on the mat.", "Was it right?", 1)


def pieces(tokenizer):
    premise, hypothesis, dot, question = tokenize(
        tokenizer, ["The cat sat on the mat", "Was it right", ".", "?"]
    )
    return premise, hypothesis, dot, question


@pytest.mark.parametrize("position", list(PromptPosition))
def test_cloze_template_at_each_position(tokenizer, position):
    """Eq. (9): X = [Prefix] X_P . [Midfix] X_H ? [Suffix] <mask> [Endfix] ."""
    premise, hypothesis, dot, question = pieces(tokenizer)
    slots, mask = [tokenizer.unk_token_id] * 4, [tokenizer.mask_token_id]
    order = {
        PromptPosition.PREFIX: [slots, premise, dot, hypothesis, question, mask, dot],
        PromptPosition.MIDFIX: [premise, dot, slots, hypothesis, question, mask, dot],
        PromptPosition.SUFFIX: [premise, dot, hypothesis, question, slots, mask, dot],
        PromptPosition.ENDFIX: [premise, dot, hypothesis, question, mask, slots, dot],
    }[position]
    expected = [
        tokenizer.cls_token_id,
        *(i for piece in order for i in piece),
        tokenizer.sep_token_id,
    ]

    (encoded,) = ClozeTemplate(tokenizer, 4, position, 256).encode([EXAMPLE])

    assert encoded.input_ids == expected
    assert encoded.input_ids[encoded.mask_position] == tokenizer.mask_token_id
    start = 1 + sum(len(piece) for piece in order[: order.index(slots)])
    assert encoded.prompt_positions == tuple(range(start, start + 4))
    assert encoded.label == 1


def test_suffix_prompt_sits_right_before_the_mask(tokenizer):
    (encoded,) = ClozeTemplate(tokenizer, 3, "suffix", 256).encode([EXAMPLE])
    assert encoded.prompt_positions[-1] + 1 == encoded.mask_position


@settings(max_examples=60, deadline=None)
@given(
    premise_words=st.integers(0, 60),
    hypothesis_words=st.integers(0, 60),
    max_length=st.integers(24, 64),
    position=st.sampled_from(list(PromptPosition)),
)
def test_truncation_never_cuts_prompt_or_mask(
    tokenizer, premise_words, hypothesis_words, max_length, position
):
    example = Example("cat " * premise_words + "end", "dog " * hypothesis_words + "end")
    template = ClozeTemplate(tokenizer, 4, position, max_length)
    (encoded,) = template.encode([example])
    assert len(encoded.input_ids) <= max_length
    assert encoded.input_ids[encoded.mask_position] == tokenizer.mask_token_id
    assert encoded.input_ids.count(tokenizer.mask_token_id) == 1
    assert [encoded.input_ids[i] for i in encoded.prompt_positions] == [tokenizer.unk_token_id] * 4
    assert encoded.input_ids[0] == tokenizer.cls_token_id
    assert encoded.input_ids[-1] == tokenizer.sep_token_id


def reference_truncation(first, second, budget):
    """Cut one token at a time from the longer part (the second on a tie)."""
    first, second = list(first), list(second)
    while len(first) + len(second) > budget:
        if len(first) > len(second):
            first.pop()
        else:
            second.pop()
    return first, second


@given(st.integers(0, 80), st.integers(0, 80), st.integers(2, 120))
def test_truncate_pair_matches_token_by_token_cutting(first, second, budget):
    a, b = list(range(first)), list(range(100, 100 + second))
    assert truncate_pair(a, b, budget) == reference_truncation(a, b, budget)


def test_max_length_too_small_for_the_template(tokenizer):
    with pytest.raises(InvalidInput, match="raise max length") as caught:
        ClozeTemplate(tokenizer, 16, "suffix", 20).encode([EXAMPLE])
    assert caught.value.field == "max_length"


@pytest.mark.parametrize("language", sorted(PCT_TEMPLATES))
def test_pct_template_per_language(tokenizer, language):
    (encoded,) = CrossLingualTemplate(tokenizer, 128, PCT_TEMPLATES).encode([EXAMPLE], language)
    premise = tokenize(tokenizer, [EXAMPLE.premise])[0]
    ids = encoded.input_ids
    assert ids[1 : 1 + len(premise)] == premise  # the premise is the first segment
    assert ids[encoded.mask_position] == tokenizer.mask_token_id
    assert ids.count(tokenizer.mask_token_id) == 1
    second = ids[len(premise) + 3 : -1]  # after <s> P </s></s>
    mask_first = language in ("ar", "ur")
    assert (second[0] == tokenizer.mask_token_id) is mask_first


def test_pct_truncation_keeps_template_and_mask(tokenizer):
    long = Example("cat " * 200, "dog " * 200)
    for language in PCT_TEMPLATES:
        (encoded,) = CrossLingualTemplate(tokenizer, 48, PCT_TEMPLATES).encode([long], language)
        assert len(encoded.input_ids) == 48
        assert encoded.input_ids[encoded.mask_position] == tokenizer.mask_token_id


def test_pair_template_for_fine_tuning(tokenizer):
    (encoded,) = PairTemplate(tokenizer, 256).encode([EXAMPLE])
    premise, hypothesis = tokenize(tokenizer, [EXAMPLE.premise, EXAMPLE.hypothesis])
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert encoded.input_ids == [cls, *premise, sep, sep, *hypothesis, sep]
    assert encoded.mask_position == -1


def test_verbalizer_ids_are_the_label_words(tokenizer):
    """W_Z rows in label order entailment, neutral, contradiction."""
    ids = label_word_ids(tokenizer, XNLI.verbalizer, XNLI.labels)
    assert tokenizer.convert_ids_to_tokens(ids) == ["▁right", "▁maybe", "▁wrong"]
    ids = label_word_ids(tokenizer, XNLI.pct_verbalizer, XNLI.labels)
    assert tokenizer.convert_ids_to_tokens(ids) == ["▁yes", "▁maybe", "▁no"]


def test_multi_piece_label_word_uses_its_last_piece(tokenizer):
    pieces = tokenize(tokenizer, ["unbelievably"])[0]
    assert len(pieces) > 1
    verbalizer = {"entailment": "unbelievably", "neutral": "maybe", "contradiction": "wrong"}
    assert label_word_ids(tokenizer, verbalizer, XNLI.labels)[0] == pieces[-1]


def test_special_tokens_follow_the_tokenizer_bert_layout():
    tokenizer = bert_style_tokenizer()
    specials = SpecialTokens(tokenizer)
    ids, types, offsets = specials.wrap([10, 11], [12])
    assert ids == [2, 10, 11, 3, 12, 3]
    assert types == [0, 0, 0, 0, 1, 1]
    assert offsets == [1, 4]
    assert (specials.count(1), specials.count(2)) == (2, 3)
    (encoded,) = ClozeTemplate(tokenizer, 2, "suffix", 64).encode([Example("the cat", "sat")])
    assert encoded.input_ids[encoded.mask_position] == tokenizer.mask_token_id


def test_collate_pads_dynamically(tokenizer):
    template = ClozeTemplate(tokenizer, 4, "suffix", 256)
    short, long = template.encode([Example("a", "b"), Example("a b c d e f g", "h i j k")])
    batch = collate([short, long], tokenizer.pad_token_id)
    assert batch.input_ids.shape == (2, len(long.input_ids))
    assert batch.attention_mask[0].sum().item() == len(short.input_ids)
    assert batch.input_ids[0, len(short.input_ids) :].eq(tokenizer.pad_token_id).all()
    assert batch.prompt_positions.shape == (2, 4)
    assert batch.mask_positions.tolist() == [short.mask_position, long.mask_position]


def test_the_tiny_tokenizer_is_the_same_in_every_process():
    """BPE training breaks frequency ties in hash order, which differs per process; the
    alphabet we choose makes the tiny backbone's tokenizer, and so its results, reproducible."""
    script = (
        "from mpt_engine.backbone import train_tokenizer;"
        "from mpt_engine.token_cache import tokenizer_fingerprint;"
        "texts = [chr(c) * (1 + c % 3) + ' the cat' for c in range(0x3b1, 0x3c9)] * 3;"
        "print(tokenizer_fingerprint(train_tokenizer(texts, 120, limit_alphabet=20)))"
    )
    fingerprints = {
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout
        for _ in range(3)
    }
    assert len(fingerprints) == 1

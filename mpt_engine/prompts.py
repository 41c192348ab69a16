"""Templates and verbalizers: the cloze of Eq. (1)/(9), PCT's cross-lingual templates, and FT's
plain pair. Their words come from the run's task (mpt_engine.tasks): XNLI's are Zhao & Schütze's
verbalizer and PCT's templates, verbatim."""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import ClassVar

from mpt_engine.config import PromptPosition
from mpt_engine.data.examples import Example
from mpt_engine.encoding import Encoded, SpecialTokens, truncate_pair, truncate_second_first
from mpt_engine.errors import InvalidInput
from mpt_engine.tasks import Cloze, Task
from mpt_engine.token_cache import tokenize, tokenizer_fingerprint

_MASK = "<mask>"
PAPER_CLOZE = Cloze()  # X_P . X_H ? <mask> .


def label_word_ids(tokenizer, verbalizer: Mapping[str, str], labels: Sequence[str]) -> list[int]:
    """The rows of W_Z in Eq. (2), in the task's label order, as xlmrprompt's
    `get_verbalization_ids` finds them: the word encoded on its own (XLM-R: `▁right`); a word
    split into several pieces is represented by its last piece."""
    ids = [
        tokenizer(verbalizer[label], add_special_tokens=False)["input_ids"][-1] for label in labels
    ]
    return _distinct(ids, verbalizer)


def pct_label_ids(tokenizer, task: Task) -> list[int]:
    """PCT's label words as its template spells them: the mask follows `Answer:` with no space,
    so each word is the first piece after the cue (XLM-R: `yes` 63736, `may` 11354 of "maybe",
    `no` 157, the ids hard-coded in PCT's code). A tokenizer that merges cue and word (the tiny
    BPE one) falls back to the word's own first piece."""
    before_mask = task.pct_templates[task.source_language].split(_MASK)[0]
    cue = before_mask.split("{}")[-1].split("?")[-1].strip()
    cue_ids = tokenizer(cue, add_special_tokens=False)["input_ids"]
    ids = []
    for label in task.labels:
        word = task.pct_verbalizer[label]
        filled = tokenizer(cue + word, add_special_tokens=False)["input_ids"]
        follows = filled[: len(cue_ids)] == cue_ids and len(filled) > len(cue_ids)
        own = tokenizer(word, add_special_tokens=False)["input_ids"]
        ids.append(filled[len(cue_ids)] if follows else own[0])
    return _distinct(ids, task.pct_verbalizer)


def _distinct(ids: list[int], verbalizer: Mapping[str, str]) -> list[int]:
    if len(set(ids)) != len(ids):
        raise InvalidInput(f"label words {list(verbalizer.values())} share a token id {ids}")
    return ids


def verbalizer_record(tokenizer, ids: Sequence[int], labels: Sequence[str]) -> dict[str, dict]:
    """What a run classified: each label's token id and piece."""
    pieces = tokenizer.convert_ids_to_tokens(list(ids))
    return {
        label: {"id": int(token), "piece": piece}
        for label, token, piece in zip(labels, ids, pieces, strict=True)
    }


def render(tokenizer, encoded: Encoded) -> str:
    """One encoded example as text, the soft-prompt slots shown as [p]."""
    tokens = tokenizer.convert_ids_to_tokens(encoded.input_ids)
    for position in encoded.prompt_positions:
        tokens[position] = "[p]"
    return tokenizer.convert_tokens_to_string(tokens)


def strip_end_punctuation(text: str) -> str:
    stripped = text.rstrip(string.punctuation)
    return stripped or text


class Template:
    """What every template shares: the tokenizer's special tokens, and premises and hypotheses
    tokenised once (and cached on disk for large lists)."""

    def __init__(self, tokenizer, *settings):
        self.tokenizer = tokenizer
        self.fingerprint = tokenizer_fingerprint(tokenizer)
        self.specials = SpecialTokens(tokenizer)
        # what its encodings depend on: equal keys encode every example alike
        self.key = repr((type(self).__name__, self.fingerprint, settings))

    def tokenize_pairs(self, examples: Sequence[Example], strip: bool = False):
        clean = strip_end_punctuation if strip else str
        premises = tokenize(self.tokenizer, [clean(e.premise) for e in examples], self.fingerprint)
        hypotheses = tokenize(
            self.tokenizer, [clean(e.hypothesis) for e in examples], self.fingerprint
        )
        return zip(examples, premises, hypotheses, strict=True)


class ClozeTemplate(Template):
    """Eq. (9): X = [Prefix] X_P . [Midfix] X_H ? [Suffix] <mask> [Endfix] .

    One segment; the m prompt slots hold a placeholder id whose embeddings the model overwrites
    with p^S or p^T. Suffix is Eq. (1), the paper's default.
    """

    # Where the prompt goes in the piece order  X_P . X_H ? <mask> .
    _PROMPT_INDEX: ClassVar[dict[PromptPosition, int]] = {
        PromptPosition.PREFIX: 0,
        PromptPosition.MIDFIX: 2,
        PromptPosition.SUFFIX: 4,
        PromptPosition.ENDFIX: 5,
    }

    def __init__(
        self,
        tokenizer,
        prompt_length: int,
        position: PromptPosition,
        max_length: int,
        cloze: Cloze = PAPER_CLOZE,
    ):
        super().__init__(tokenizer, prompt_length, PromptPosition(position), max_length, cloze)
        self.prompt_length = prompt_length
        self.prompt_index = self._PROMPT_INDEX[PromptPosition(position)]
        self.dot, self.question, self.end = (
            tokenize(tokenizer, [piece])[0]
            for piece in (cloze.after_first, cloze.after_second, cloze.after_mask)
        )
        self.slots = [tokenizer.unk_token_id] * prompt_length
        fixed = len(self.dot) + len(self.question) + len(self.end) + 1 + prompt_length
        self.budget = max_length - fixed - self.specials.count(1)

    def encode(self, examples: Sequence[Example]) -> list[Encoded]:
        mask = [self.tokenizer.mask_token_id]
        encoded = []
        for example, premise, hypothesis in self.tokenize_pairs(examples, strip=True):
            premise, hypothesis = truncate_second_first(premise, hypothesis, self.budget)
            pieces = [premise, self.dot, hypothesis, self.question, mask, self.end]
            pieces.insert(self.prompt_index, self.slots)
            body = [token for piece in pieces for token in piece]
            prompt_start = sum(len(piece) for piece in pieces[: self.prompt_index])
            mask_piece = next(index for index, piece in enumerate(pieces) if piece is mask)
            mask_index = sum(len(piece) for piece in pieces[:mask_piece])
            ids, types, (offset,) = self.specials.wrap(body)
            prompt = range(offset + prompt_start, offset + prompt_start + self.prompt_length)
            encoded.append(Encoded(ids, types, example.label, offset + mask_index, tuple(prompt)))
        return encoded


class CrossLingualTemplate(Template):
    """PCT: `premise </s></s> question:{hypothesis}? Answer:<mask>` in a given language, encoded
    as PCT's code does: `tokenizer.encode(premise, template.format(hypothesis))`, the filled
    template tokenised as one text (so `question:The` gives `:` `The`, not `▁The`).

    When the pair is longer than max_length (never for XNLI at 256), premise and hypothesis are
    cut longest-first and the template's words and mask are kept whole, tokenised apart from the
    hypothesis; PCT's code instead cuts the filled template and patches a lost mask back in.
    """

    def __init__(self, tokenizer, max_length: int, templates: Mapping[str, str]):
        super().__init__(tokenizer, max_length, sorted(templates.items()))
        self.max_length = max_length
        self.templates = templates
        self.pieces = {lang: self._parse(template) for lang, template in templates.items()}

    def _parse(self, template: str) -> tuple[list[int], list[int]]:
        """Token ids before and after the hypothesis (the mask is a token of its own)."""
        left, _, right = template.partition("{}")  # a single-text task's has no {}
        return tuple(tokenize(self.tokenizer, [side])[0] if side else [] for side in (left, right))

    def encode(self, examples: Sequence[Example], language: str) -> list[Encoded]:
        template = self.templates[language]
        premises = tokenize(self.tokenizer, [e.premise for e in examples], self.fingerprint)
        filled = tokenize(
            self.tokenizer, [template.format(e.hypothesis) for e in examples], self.fingerprint
        )
        budget = self.max_length - self.specials.count(2)
        encoded = []
        for example, premise, second in zip(examples, premises, filled, strict=True):
            if len(premise) + len(second) > budget:
                premise, second = self._cut(example, premise, language, budget)
            ids, types, (_, offset) = self.specials.wrap(premise, second)
            mask_position = offset + second.index(self.tokenizer.mask_token_id)
            encoded.append(Encoded(ids, types, example.label, mask_position))
        return encoded

    def _cut(self, example: Example, premise: list[int], language: str, budget: int):
        left, right = self.pieces[language]
        hypothesis = tokenize(self.tokenizer, [example.hypothesis])[0]
        room = budget - len(left) - len(right)
        premise, hypothesis = truncate_pair(premise, hypothesis, room)
        return premise, left + hypothesis + right


class PairTemplate(Template):
    """FT: the plain premise-hypothesis pair for a sequence-classification head."""

    def __init__(self, tokenizer, max_length: int):
        super().__init__(tokenizer, max_length)
        self.budget = max_length - self.specials.count(2)

    def encode(self, examples: Sequence[Example]) -> list[Encoded]:
        encoded = []
        for example, premise, hypothesis in self.tokenize_pairs(examples):
            ids, types, _ = self.specials.wrap(*truncate_pair(premise, hypothesis, self.budget))
            encoded.append(Encoded(ids, types, example.label))
        return encoded

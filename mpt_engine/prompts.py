"""Templates and verbalizers: the cloze of Eq. (1)/(9), PCT's cross-lingual templates, and FT's
plain pair."""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import ClassVar

from mpt_engine.config import PromptPosition
from mpt_engine.data.examples import Example
from mpt_engine.encoding import Encoded, SpecialTokens, truncate_pair
from mpt_engine.errors import InvalidInput
from mpt_engine.languages import LABELS
from mpt_engine.token_cache import fingerprint, tokenize

# Zhao & Schütze's English verbalizer, used for every test language (SP and MPT).
SOFT_PROMPT_VERBALIZER = {"entailment": "right", "neutral": "maybe", "contradiction": "wrong"}
# PCT's label words (XLM-R ids 63736 / 11354 / 157 in its code), English for every language.
PCT_VERBALIZER = {"entailment": "yes", "neutral": "maybe", "contradiction": "no"}

# PCT's templates, verbatim from qikunxun/PCT (irregular spacing and case included). {} is the
# hypothesis; the premise is the first segment of a pair encoding.
PCT_TEMPLATES = {
    "en": "question:{}? Answer:<mask>",
    "zh": "问题:{}? 答案:<mask>",
    "fr": "question:{}? réponse:<mask>",
    "es": "pregunta:{}? Respuesta:<mask>",
    "de": "frage:{}? Antwort:<mask>",
    "el": "ερώτηση:{}? Απάντηση:<mask>",
    "bg": "въпрос: {}? Отговор:<mask>",
    "ru": "вопрос:{}? Ответ:<mask>",
    "tr": "soru:{}? Cevap:<mask>",
    "vi": "câu hỏi:{}? Trả lời:<mask>",
    "th": "คำถาม:{}? คำตอบ:<mask>",
    "hi": "प्रश्न:{}? उत्तर:<mask>",
    "sw": "swali: {}? Jibu: <mask>",
    "ur": "<mask>:سوال: {}؟ جواب",
    "ar": "<mask>:سؤال:{}؟ الجواب",
}
_MASK = "<mask>"


def label_word_ids(tokenizer, verbalizer: dict[str, str]) -> list[int]:
    """The rows of W_Z in Eq. (2), in LABELS order. A word split into several pieces is
    represented by its last piece, as in Zhao & Schütze's code."""
    ids = [
        tokenizer(verbalizer[label], add_special_tokens=False)["input_ids"][-1] for label in LABELS
    ]
    if len(set(ids)) != len(ids):
        raise InvalidInput(f"label words {list(verbalizer.values())} share a token id {ids}")
    return ids


def strip_end_punctuation(text: str) -> str:
    stripped = text.rstrip(string.punctuation)
    return stripped or text


class Template:
    """What every template shares: the tokenizer's special tokens, and premises and hypotheses
    tokenised once (and cached on disk for large lists)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.fingerprint = fingerprint(tokenizer)
        self.specials = SpecialTokens(tokenizer)

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

    def __init__(self, tokenizer, prompt_length: int, position: PromptPosition, max_length: int):
        super().__init__(tokenizer)
        self.prompt_length = prompt_length
        self.prompt_index = self._PROMPT_INDEX[PromptPosition(position)]
        self.max_length = max_length
        self.dot = tokenize(tokenizer, ["."])[0]
        self.question = tokenize(tokenizer, ["?"])[0]
        self.slots = [tokenizer.unk_token_id] * prompt_length
        fixed = 2 * len(self.dot) + len(self.question) + 1 + prompt_length
        self.budget = max_length - fixed - self.specials.count(1)

    def encode(self, examples: Sequence[Example]) -> list[Encoded]:
        mask = [self.tokenizer.mask_token_id]
        encoded = []
        for example, premise, hypothesis in self.tokenize_pairs(examples, strip=True):
            premise, hypothesis = truncate_pair(premise, hypothesis, self.budget)
            pieces = [premise, self.dot, hypothesis, self.question, mask, self.dot]
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
    """PCT: `premise </s></s> question:{hypothesis}? Answer:<mask>` in a given language."""

    def __init__(self, tokenizer, max_length: int):
        super().__init__(tokenizer)
        self.max_length = max_length
        self.pieces = {lang: self._parse(template) for lang, template in PCT_TEMPLATES.items()}

    def _parse(self, template: str) -> tuple[list[int], list[int]]:
        """Token ids before and after the hypothesis; -1 marks the mask."""
        sides = []
        for side in template.split("{}"):
            texts = side.split(_MASK)
            ids: list[int] = []
            for index, text in enumerate(texts):
                ids.extend(tokenize(self.tokenizer, [text])[0] if text else [])
                if index < len(texts) - 1:
                    ids.append(-1)
            sides.append(ids)
        left, right = sides
        return left, right

    def encode(self, examples: Sequence[Example], language: str) -> list[Encoded]:
        left, right = self.pieces[language]
        budget = self.max_length - len(left) - len(right) - self.specials.count(2)
        encoded = []
        for example, premise, hypothesis in self.tokenize_pairs(examples):
            premise, hypothesis = truncate_pair(premise, hypothesis, budget)
            second = left + hypothesis + right
            ids, types, (_, offset) = self.specials.wrap(premise, second)
            mask_position = offset + second.index(-1)
            ids[mask_position] = self.tokenizer.mask_token_id
            encoded.append(Encoded(ids, types, example.label, mask_position))
        return encoded


class PairTemplate(Template):
    """FT: the plain premise-hypothesis pair for a sequence-classification head."""

    def __init__(self, tokenizer, max_length: int):
        super().__init__(tokenizer)
        self.budget = max_length - self.specials.count(2)

    def encode(self, examples: Sequence[Example]) -> list[Encoded]:
        encoded = []
        for example, premise, hypothesis in self.tokenize_pairs(examples):
            ids, types, _ = self.specials.wrap(*truncate_pair(premise, hypothesis, self.budget))
            encoded.append(Encoded(ids, types, example.label))
        return encoded

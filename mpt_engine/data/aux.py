"""Auxiliary parallel corpora for the cross-lingual alignment task (Sec. III-B, Eq. 5-7).

Each corpus is a list of AlignmentPair: an English pair and its translation into one target
language. Corpora are drawn with a fixed seed, like the paper's single PAWS-15 file, so that the
run seeds vary only the training randomness.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from pathlib import Path

from mpt_engine.data.examples import AlignmentPair, Example
from mpt_engine.errors import InvalidInput, SourceUnavailable
from mpt_engine.jsonl import read_jsonl
from mpt_engine.languages import SOURCE_LANGUAGE, TARGET_LANGUAGES
from mpt_engine.paths import paws15_file

CORPUS_SEED = 0
PAWSX_LANGUAGES = ("de", "es", "fr", "ja", "ko", "zh")  # PAWS-X's translations of English
PLACEHOLDER = "NS"  # PAWS-X marks sentences its translators left out with "NS"


def alignment_corpus(
    source,
    aux: str,
    size: int,
    exclude: Collection[Example] = (),
    targets: Sequence[str] = TARGET_LANGUAGES,
) -> list[AlignmentPair]:
    """`size` pairs of the corpus `aux` (PAWS-X and XNLI dev: into the task's `targets` that
    the corpus has), none of which shares its English premise with one of `exclude` (the
    k-shot inputs)."""
    if aux == "pawsx":
        pairs = _random_language_pairs(source.pawsx, _shared(PAWSX_LANGUAGES, targets, aux))
    elif aux == "xnli-dev":
        pairs = _random_language_pairs(
            lambda lang: dict(enumerate(source.xnli("dev", lang))),
            _shared(TARGET_LANGUAGES, targets, aux),
        )
    elif aux == "paws15":
        pairs = read_pairs(paws15_path())
    else:  # the user's own corpus, whatever its languages
        pairs = read_pairs(Path(aux.removeprefix("file:")).expanduser())
    # The paper's dev splits are XNLI dev rows, and XNLI dev gives each premise three
    # hypotheses: excluding the k-shot pairs alone would still align on premises that model
    # selection reads. Pairs are parallel, so the English premise stands for every language.
    premises = {example.premise for example in exclude}
    pairs = [pair for pair in pairs if pair.source.premise not in premises]
    if not pairs:
        raise InvalidInput(
            f"aux corpus {aux} has no usable pairs (none whose English premise is outside the "
            "k-shot splits); choose another {aux}, or {aux} none",
            field="aux",
            value=aux,
        )
    if len(pairs) < size:
        raise InvalidInput(
            f"aux corpus {aux} has {len(pairs)} usable pairs, fewer than {{aux_size}} {size}; "
            f"pass {{aux_size}} {len(pairs)} or fewer",
            field="aux_size",
            value=size,
            allowed=f"at most {len(pairs)}",
        )
    return random.Random(CORPUS_SEED).sample(pairs, size)


def _shared(corpus: Sequence[str], targets: Sequence[str], aux: str) -> tuple[str, ...]:
    """The corpus's languages that the task tests, in the corpus's order."""
    shared = tuple(language for language in corpus if language in targets)
    if not shared:
        raise InvalidInput(
            f"aux corpus {aux} has none of the task's languages; choose another {{aux}}",
            field="aux",
            value=aux,
        )
    return shared


def _random_language_pairs(load, languages: tuple[str, ...]) -> list[AlignmentPair]:
    """Match each English row with the same row in a randomly chosen target language."""
    english = load(SOURCE_LANGUAGE)
    targets = {lang: load(lang) for lang in languages}
    rng = random.Random(CORPUS_SEED)
    pairs = []
    for key, source in english.items():
        language = rng.choice(languages)
        target = targets[language].get(key)
        if target is None or PLACEHOLDER in (target.premise, target.hypothesis):
            continue
        unlabelled = Example(source.premise, source.hypothesis)
        pairs.append(
            AlignmentPair(unlabelled, Example(target.premise, target.hypothesis), language)
        )
    return pairs


def paws15_path() -> Path:
    """Where `mpt data build-paws15` writes the corpus (in the store: it costs GPU time)."""
    return paws15_file()


PAIR_FIELDS = ("source_premise", "source_hypothesis", "target_premise", "target_hypothesis")


def read_pairs(path: Path) -> list[AlignmentPair]:
    """A JSONL file of parallel pairs: the four PAIR_FIELDS and an optional `language`."""
    if not path.exists():
        hint = " (build it with `mpt data build-paws15`)" if path == paws15_path() else ""
        raise SourceUnavailable(f"aux corpus file {path} does not exist{hint}")
    pairs = []
    for number, row in read_jsonl(path, PAIR_FIELDS):
        language = row.get("language", "xx")
        if not isinstance(language, str):
            raise InvalidInput(f"{path}:{number}: language must be a string code")
        pairs.append(
            AlignmentPair(
                Example(row["source_premise"], row["source_hypothesis"]),
                Example(row["target_premise"], row["target_hypothesis"]),
                language,
            )
        )
    return pairs

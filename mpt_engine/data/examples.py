"""The records every data source produces."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field

UNLABELLED = -1


@dataclass(frozen=True)
class Example:
    """A premise-hypothesis pair; `label` indexes languages.LABELS (or UNLABELLED)."""

    premise: str
    hypothesis: str
    label: int = UNLABELLED


@dataclass(frozen=True)
class AlignmentPair:
    """A source-language pair and its translation, for the alignment task of Eq. (5)-(7)."""

    source: Example
    target: Example
    language: str  # language of the target side


@dataclass
class TaskData:
    """Everything one run reads. Test and dev are keyed by language."""

    train: list[Example]  # English k-shot training split, 3k examples
    dev: list[Example]  # English k-shot dev split, for model selection
    test: dict[str, list[Example]]  # XNLI test per language
    aux: list[AlignmentPair] = field(default_factory=list)
    fingerprints: dict[str, str] = field(default_factory=dict)
    test_rows: dict[str, list[int]] = field(default_factory=dict)  # each test example's file row

    def texts(self) -> Iterator[str]:
        """Every sentence the run will tokenise (used to train the tiny tokenizer)."""
        examples: list[Example] = [*self.train, *self.dev]
        for rows in self.test.values():
            examples.extend(rows)
        for pair in self.aux:
            examples.extend((pair.source, pair.target))
        for example in examples:
            yield example.premise
            yield example.hypothesis


class Source:
    """What every data source shares: `examples(task, split, language)` is each one's own."""

    def examples(self, task, split: str, language: str) -> list[Example]:
        raise NotImplementedError

    def xnli(self, split: str, language: str) -> list[Example]:
        """XNLI's rows, the paper's task (for the code and tests that are about XNLI)."""
        from mpt_engine.tasks import load_task

        return self.examples(load_task("xnli"), split, language)


def fingerprint(rows: Iterable[Example | AlignmentPair]) -> str:
    """A short content hash of a list of examples, recorded so a run can prove what it saw."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(asdict(row), sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()[:16]

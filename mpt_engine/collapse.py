"""Collapse: a finished run whose test predictions fall into one class in every language (a PCT
run that answers "contradiction" to everything), so that its accuracy is chance dressed up as a
result. The trainer records it in the result (`collapse`); `results show` and every table flag
it, so that nobody publishes such a run unawares."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

THRESHOLD_PERCENT = 90  # one class's share of a language's predictions that counts as collapse
NO_LABEL = "none"  # the class of PCT's prediction -1: no label word was the argmax
MEANING = f"one class took ≥ {THRESHOLD_PERCENT}% of the test predictions in every language"


@dataclass(frozen=True)
class Majority:
    """A language's most frequent predicted class and its share (0-1) of the predictions."""

    label: str
    share: float


@dataclass(frozen=True)
class Collapse:
    collapsed: bool  # the majority share reaches the threshold in every language
    per_language: dict[str, Majority]

    @property
    def share(self) -> float:
        """The smallest majority share over the languages."""
        return min(majority.share for majority in self.per_language.values())

    def labels(self) -> list[str]:
        """The languages' majority classes, each once."""
        return list(dict.fromkeys(majority.label for majority in self.per_language.values()))

    def warning(self) -> str:
        """`collapsed: at least 97% of the test predictions are 'contradiction' in every
        language` (the percentage rounded down, so that "at least" holds)."""
        percent = math.floor(round(100 * self.share, 6))
        how_many = "all" if self.share == 1 else f"at least {percent}%"
        labels = self.labels()
        named = ", ".join(f"'{label}'" for label in labels)
        what = named if len(labels) == 1 else f"one class ({named})"
        return f"collapsed: {how_many} of the test predictions are {what} in every language"

    def to_dict(self) -> dict[str, Any]:
        return {
            "collapsed": self.collapsed,
            "threshold": THRESHOLD_PERCENT / 100,
            "per_language": {
                language: asdict(majority) for language, majority in self.per_language.items()
            },
        }


def detect(predictions: Mapping[str, Sequence[int]], labels: Sequence[str]) -> Collapse | None:
    """Each language's majority class among its predicted label indices (-1 a class of its own,
    NO_LABEL); collapsed when it takes at least THRESHOLD_PERCENT of them in every language,
    whether or not the languages share that class. None without any prediction."""
    majorities, collapsed = {}, True
    for language, predicted in predictions.items():
        if not predicted:
            continue
        ((index, size),) = Counter(predicted).most_common(1)
        label = NO_LABEL if index < 0 else labels[index]
        majorities[language] = Majority(label, round(size / len(predicted), 4))
        collapsed = collapsed and 100 * size >= THRESHOLD_PERCENT * len(predicted)
    return Collapse(collapsed, majorities) if majorities else None


def recorded(result: Mapping[str, Any] | None) -> Collapse | None:
    """The collapse a stored result records; None, not known, for a result written before mpt
    looked for collapse and for a `collapse` field of the wrong shape."""
    value = (result or {}).get("collapse")
    if not isinstance(value, dict) or not isinstance(value.get("collapsed"), bool):
        return None
    per_language = value.get("per_language")
    if not isinstance(per_language, dict) or not per_language:
        return None
    majorities = {}
    for language, majority in per_language.items():
        if not isinstance(majority, dict) or not isinstance(majority.get("label"), str):
            return None
        share = majority.get("share")
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            return None
        majorities[language] = Majority(majority["label"], float(share))
    return Collapse(value["collapsed"], majorities)

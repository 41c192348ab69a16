"""Assemble the data of one run from its configuration."""

from __future__ import annotations

import random

from mpt_engine.config import DataKind, Method, RunConfig, SplitKind
from mpt_engine.data.aux import alignment_corpus
from mpt_engine.data.examples import Example, TaskData, fingerprint
from mpt_engine.data.hub import HubSource
from mpt_engine.data.local import LocalSource
from mpt_engine.data.synthetic import SyntheticSource
from mpt_engine.errors import InvalidInput
from mpt_engine.languages import LABELS, SOURCE_LANGUAGE, XNLI_LANGUAGES
from mpt_engine.sources import data_folder


def open_source(kind: DataKind):
    if kind is DataKind.LOCAL:
        return LocalSource(data_folder())
    return HubSource() if kind is DataKind.HUB else SyntheticSource()


def load_task_data(config: RunConfig) -> TaskData:
    config = config.resolved()
    source = open_source(config.data)
    if config.split is SplitKind.PAPER:
        train = source.paper_split("train", config.shots)
        dev = source.paper_split("dev", config.shots)
    else:
        train = sample_per_class(source.xnli("train", SOURCE_LANGUAGE), config.shots, config.seed)
        dev = sample_per_class(source.xnli("dev", SOURCE_LANGUAGE), config.shots, config.seed)
    test = {lang: source.xnli("test", lang)[: config.test_limit] for lang in XNLI_LANGUAGES}
    uses_aux = config.method is Method.MPT and config.aux != "none"
    aux = alignment_corpus(source, config.aux, config.aux_size, train + dev) if uses_aux else []
    fingerprints = {"train": fingerprint(train), "dev": fingerprint(dev)}
    fingerprints.update({f"test.{lang}": fingerprint(rows) for lang, rows in test.items()})
    if aux:
        fingerprints["aux"] = fingerprint(aux)
    return TaskData(train, dev, test, aux, fingerprints)


def sample_per_class(pool: list[Example], shots: int, seed: int) -> list[Example]:
    """k examples of each class, drawn without replacement with the given seed."""
    rng = random.Random(seed)
    chosen = []
    for label in range(len(LABELS)):
        candidates = [example for example in pool if example.label == label]
        if len(candidates) < shots:
            raise InvalidInput(
                f"only {len(candidates)} {LABELS[label]} examples to sample {shots} from"
            )
        chosen.extend(rng.sample(candidates, shots))
    return chosen

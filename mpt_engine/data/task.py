"""Assemble the data of one run from its configuration."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence, Set

from mpt_engine.config import DataKind, Method, RunConfig, SplitKind
from mpt_engine.data.aux import alignment_corpus
from mpt_engine.data.examples import Example, TaskData, fingerprint
from mpt_engine.data.hub import HubSource
from mpt_engine.data.local import LocalSource
from mpt_engine.data.synthetic import SyntheticSource
from mpt_engine.errors import InvalidInput
from mpt_engine.sources import DATA_DIR
from mpt_engine.tasks import Task, load_task


def open_source(kind: DataKind):
    if kind is DataKind.LOCAL:
        return LocalSource(os.environ.get(DATA_DIR))  # None: a user's task needs none
    return HubSource() if kind is DataKind.HUB else SyntheticSource()


def load_task_data(config: RunConfig) -> TaskData:
    config = config.resolved()
    task = load_task(config.task)
    source = open_source(config.data)
    held_out: set[int] = set()
    if config.split is SplitKind.PAPER:
        train = source.paper_split("train", config.shots)
        dev = source.paper_split("dev", config.shots)
    else:
        train, dev, held_out = sampled_splits(source, task, config.shots, config.seed)
    test, test_rows = {}, {}
    for language in task.languages:
        rows = source.examples(task, "test", language)
        kept = [index for index in range(len(rows)) if index not in held_out][: config.test_limit]
        test[language], test_rows[language] = [rows[index] for index in kept], kept
    uses_aux = config.method is Method.MPT and config.aux != "none"
    aux = (
        alignment_corpus(source, config.aux, config.aux_size, train + dev, task.target_languages)
        if uses_aux
        else []
    )
    fingerprints = {"train": fingerprint(train), "dev": fingerprint(dev)}
    fingerprints.update({f"test.{lang}": fingerprint(rows) for lang, rows in test.items()})
    if aux:
        fingerprints["aux"] = fingerprint(aux)
    return TaskData(train, dev, test, aux, fingerprints, test_rows)


def sampled_splits(source, task: Task, shots: int, seed: int):
    """k per class for training and for dev, drawn with the seed from the source language's
    pools; when both come from one file they are disjoint, and the rows of a file the test also
    reads are held out of every language's test (row-parallel files: PAWS-X offline)."""
    language = task.source_language
    pool = source.examples(task, "train", language)
    train_rows = sample_per_class(pool, shots, seed, task.labels)
    one_pool = source.same_rows(task, "train", "dev")
    dev_pool = pool if one_pool else source.examples(task, "dev", language)
    dev_rows = sample_per_class(
        dev_pool, shots, seed, task.labels, exclude=set(train_rows) if one_pool else set()
    )
    held_out = set()
    for split, rows in (("train", train_rows), ("dev", dev_rows)):
        if source.same_rows(task, split, "test"):
            held_out.update(rows)
    return [pool[i] for i in train_rows], [dev_pool[i] for i in dev_rows], held_out


def sample_per_class(
    pool: list[Example],
    shots: int,
    seed: int,
    labels: Sequence[str],
    exclude: Set[int] = frozenset(),
) -> list[int]:
    """The rows of k examples of each class, drawn without replacement with the given seed."""
    rng = random.Random(seed)
    chosen = []
    for label, name in enumerate(labels):
        candidates = [i for i, row in enumerate(pool) if row.label == label and i not in exclude]
        if len(candidates) < shots:
            raise InvalidInput(f"only {len(candidates)} {name} examples to sample {shots} from")
        chosen.extend(rng.sample(candidates, shots))
    return chosen

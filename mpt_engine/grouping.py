"""Which finished runs belong together: runs whose configurations are equal apart from the
seed (or other ignored fields) form one group, one cell of a table."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from mpt_engine.config import UNUSED_BY, identity
from mpt_engine.results import StoredRun
from mpt_engine.run_state import RunStatus

# A variant (an ablation, SP beside MPT) reads other files than its base run (no auxiliary
# corpus, another one), so it is looked up without the data digest.
VARIANT_IGNORE = ("seed", "data_digest")


def _unused(config: Mapping[str, Any], name: str) -> bool:
    """A field the run's method does not use (resolved to None); None elsewhere is a value
    (test_limit None: every test example)."""
    return config.get(name) is None and name in UNUSED_BY.get(config.get("method"), ())


def config_key(config: Mapping[str, Any], ignore: Sequence[str] = ("seed",)) -> str:
    """Runs with equal keys differ only in the ignored fields (and in what is not part of a
    run's identity: the evaluation batch size, where its data files lie)."""
    kept = {k: v for k, v in identity(config).items() if k not in ignore}
    return json.dumps(kept, sort_keys=True)


def group_runs(
    runs: Sequence[StoredRun], ignore: Sequence[str] = ("seed",)
) -> dict[str, list[StoredRun]]:
    """Finished runs grouped by configuration (all fields but `ignore`), in order of appearance."""
    groups: dict[str, list[StoredRun]] = {}
    for run in runs:
        if run.status is RunStatus.FINISHED:
            groups.setdefault(config_key(run.config, ignore), []).append(run)
    return groups


def run_settings(runs: Sequence[StoredRun]) -> list[str]:
    """For each run, what sets it apart beyond method, shots and seed (`data=synthetic
    model=tiny`), so that runs of one method, shots and seed can be told apart in a list."""
    return distinguishing_settings([[run] for run in runs], ("method", "shots", "seed"))


def distinguishing_settings(groups: Sequence[list[StoredRun]], shown: Sequence[str]) -> list[str]:
    """For each group, `field=value` where it departs from the most common value of a field that
    takes several values among the groups ("—" for none). A field a method does not use (None)
    distinguishes nothing; nor does the data digest, which follows the shots (their k-shot
    files) and the auxiliary corpus, unless the same configuration read other data (edited)."""
    configs = [group[0].config for group in groups]
    # Groups that differ only in the seed (10,000 runs may be a handful of settings) are
    # labelled once.
    keys = [_setting(config, {"seed"}) for config in configs]
    kinds = Counter(keys)
    first: dict[tuple, Mapping[str, Any]] = {}
    for key, config in zip(keys, configs, strict=True):
        first.setdefault(key, config)
    first = _edited_data_only(first)
    ignored = {*shown, "seed"}
    common: dict[str, str] = {}
    for name in configs[0] if configs else ():
        values: Counter = Counter()
        for key, count in kinds.items():
            if not _unused(first[key], name):
                values[repr(first[key].get(name))] += count
        if name not in ignored and len(values) > 1:
            common[name] = values.most_common(1)[0][0]
    labels = {}
    for key, config in first.items():
        departures = [
            f"{name}={config.get(name)}"
            for name, usual in common.items()
            if not _unused(config, name) and repr(config.get(name)) != usual
        ]
        labels[key] = " ".join(departures) or "—"
    return [labels[key] for key in keys]


def _edited_data_only(configs: Mapping[tuple, Mapping[str, Any]]) -> dict[tuple, Mapping[str, Any]]:
    """The configs with their data digest None where their configuration (all but seed and
    digest) read one set of files only: what is left marks runs on edited data."""
    same = {key: config_key(config, VARIANT_IGNORE) for key, config in configs.items()}
    read: dict[str, set] = {}
    for key, configuration in same.items():
        read.setdefault(configuration, set()).add(configs[key].get("data_digest"))
    return {
        key: config if len(read[same[key]]) > 1 else {**config, "data_digest": None}
        for key, config in configs.items()
    }


def _setting(config: Mapping[str, Any], ignored: set[str]) -> tuple:
    """What a label depends on: the fields not ignored, and the method (what a field's being
    unused depends on)."""
    kept = tuple((name, repr(value)) for name, value in config.items() if name not in ignored)
    return (repr(config.get("method")), *kept)

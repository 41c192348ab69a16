"""Grids of runs: the product of option lists, or a named preset with the paper's values.

A preset (presets.PRESETS) names run settings and lists; options given explicitly replace the
preset's. Each run's id is the hash of its resolved config, so finished runs are skipped
and an interrupted grid resumes by running the same command again.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from mpt_engine.config import UNUSED_BY, Precision, RunConfig
from mpt_engine.errors import InvalidInput, named
from mpt_engine.presets import PRESETS, UPDATES_OF, Preset, build_config, matched_epochs


def expand(
    preset: str | None,
    lists: Mapping[str, Sequence[Any]],
    environ: Mapping[str, str] = os.environ,
    auto_precision: Precision | None = None,
) -> list[RunConfig]:
    """The runs of a grid, in order, without duplicates (equal resolved configs);
    `auto_precision` as in RunConfig.resolved (launch.local_grid gives it for this machine)."""
    if preset is not None and preset not in PRESETS:
        raise InvalidInput(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    grid = PRESETS[preset] if preset else Preset()
    runs: dict[str, RunConfig] = {}
    for variant in grid.variants:
        axes = {**grid.lists, **{k: v for k, v in variant.items() if k not in lists}}
        axes.update(lists)
        names = list(axes)
        for values in itertools.product(*(_as_tuple(axes[name]) for name in names)):
            overrides = dict(zip(names, values, strict=True))
            if overrides.pop(UPDATES_OF, None) is not None:  # SP with MPT's updates
                mpt = build_config(preset, {**overrides, "method": "mpt"}, environ, auto_precision)
                overrides["epochs"] = matched_epochs(mpt.to_dict())
            config = build_config(preset, overrides, environ, auto_precision)
            runs.setdefault(config.run_id, config)
    return list(runs.values())


MAX_RANGE = 1000  # values in one range: 1-100000 is a typo, not a grid


def parse_values(name: str, text: str, prefix: str | None = None) -> list[Any]:
    """A comma-separated option list, typed by the RunConfig field; ints accept ranges (1-5).
    `prefix` is how the user wrote the option, for messages: the option (the default) or, in a
    selection, `seed=`."""
    kind = _field_type(name)
    shown = f"{named(name)} " if prefix is None else prefix
    values: list[Any] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise InvalidInput(f"empty value in {shown}{text!r}", field=name, value=text)
        if kind is str:
            values.append(item)
            continue
        try:
            if kind is int and "-" in item[1:]:
                low, high = (int(bound) for bound in item.split("-", 1))
                if high < low:
                    raise ValueError
            else:
                values.append(kind(item))
                continue
        except ValueError:
            expected = "integers or ranges like 1-5" if kind is int else "numbers"
            raise InvalidInput(
                f"{shown}{text!r}: expected {expected}", field=name, value=text, allowed=expected
            ) from None
        if high - low >= MAX_RANGE:
            raise InvalidInput(
                f"{shown}{item}: a range holds at most {MAX_RANGE} values", field=name, value=item
            )
        values.extend(range(low, high + 1))
    return values


def _field_type(name: str) -> type:
    hints = typing.get_type_hints(RunConfig)
    if name not in hints:
        raise InvalidInput(f"unknown option {name}")
    hint = hints[name]
    if isinstance(hint, types.UnionType):  # X | None
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint if hint in (int, float) else str


def _as_tuple(value: Any) -> tuple:
    return tuple(value) if isinstance(value, list | tuple) else (value,)


def varying_fields(configs: Sequence[RunConfig]) -> list[str]:
    """Config fields whose value differs between the runs that use them (the grid's axes), in
    field order: FT's having no translator does not make the translator an axis of Table I."""
    used: dict[str, set[str]] = {}
    for config in configs:
        unused = UNUSED_BY[config.method]
        for name, value in config.to_dict().items():
            if name not in unused:
                used.setdefault(name, set()).add(repr(value))
    return [f.name for f in dataclasses.fields(RunConfig) if len(used.get(f.name, ())) > 1]

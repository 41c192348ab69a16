"""Grids of runs: the product of option lists, or a named preset with the paper's values.

A grid preset names run settings (config.PRESETS) and lists; options given explicitly replace
the preset's. Each run's id is the hash of its resolved config, so finished runs are skipped
and an interrupted grid resumes by running the same command again.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mpt_engine.config import (
    PAPER_SHOTS,
    PRESETS,
    Precision,
    RunConfig,
    TranslatorKind,
    build_config,
)
from mpt_engine.errors import InvalidInput

SEEDS = (1, 2, 3, 4, 5)
# The paper does not state k for Figures 4-5; we use Table II's 64 shots.
ABLATION_SHOTS = (64,)


@dataclass(frozen=True)
class GridPreset:
    lists: dict[str, tuple] = field(default_factory=dict)
    # Settings that vary together (Table II's rows); the lists are crossed with each variant.
    variants: tuple[dict[str, Any], ...] = ({},)
    description: str = ""


def matched_epochs(settings: dict[str, Any]) -> int:
    """SP's epochs for as many updates as MPT: an MPT epoch covers the longer of the English
    k-shot stream (3k) and the auxiliary corpus, an SP epoch only the k-shot stream."""
    english = 3 * settings["shots"]
    mpt_steps = math.ceil(max(english, settings["aux_size"]) / settings["batch_size"])
    sp_steps = math.ceil(english / settings["batch_size"])
    return settings["epochs"] * mpt_steps // sp_steps


GRID_PRESETS: dict[str, GridPreset] = {
    "smoke": GridPreset(
        {"method": ("sp", "mpt"), "shots": (4,), "seed": (1, 2)},
        description="2 methods x 2 seeds of the tiny offline setting",
    ),
    "paper": GridPreset({"seed": SEEDS}, description="one configuration, 5 seeds"),
    "demo": GridPreset({"seed": (1,)}, description="MPT on e5-small: real transfer on a CPU"),
    "transfer": GridPreset(
        {"seed": (1, 2, 3)},
        variants=(
            {"method": "mpt"},
            {"method": "sp"},
            # A control the paper lacks: SP given as many updates as MPT (the same run as SP
            # when the auxiliary corpus is no longer than the k-shot stream).
            {"method": "sp", "epochs": matched_epochs(PRESETS["transfer"])},
            {"method": "pct"},
            {"method": "ft"},
        ),
        description="FT, SP, PCT, MPT and SP with MPT's updates on e5-small, 3 seeds",
    ),
    "table1": GridPreset(
        {"method": ("ft", "sp", "pct", "mpt"), "shots": PAPER_SHOTS, "seed": SEEDS},
        description="Table I: 4 methods x 9 shot settings x 5 seeds",
    ),
    "table2": GridPreset(
        {"shots": (64,), "seed": SEEDS},
        variants=(
            {"method": "mpt"},
            {"method": "mpt", "alpha": 1.0},  # w/o consistency loss
            {"method": "mpt", "aux": "xnli-dev"},  # w/o external data
            {"method": "mpt", "translator": "none"},  # w/o prompt translator
            {"method": "mpt", "translator": "separate"},  # ... its other reading (ours)
            {"method": "sp"},  # w/o MPT framework
        ),
        description="Table II: MPT and its ablations at 64 shots x 5 seeds, plus a second "
        "reading of 'w/o prompt translator'",
    ),
    "translator": GridPreset(
        {
            "method": ("mpt",),
            "translator": tuple(
                k.value
                for k in TranslatorKind
                if k not in (TranslatorKind.NONE, TranslatorKind.SEPARATE)
            ),
            "shots": ABLATION_SHOTS,
            "seed": SEEDS,
        },
        description="Figure 4 (left): six translator architectures",
    ),
    "position": GridPreset(
        {
            "method": ("mpt",),
            "position": ("prefix", "midfix", "suffix", "endfix"),
            "shots": ABLATION_SHOTS,
            "seed": SEEDS,
        },
        description="Figure 4 (right): four prompt positions of Eq. (9)",
    ),
    "prompt-length": GridPreset(
        {
            "method": ("mpt",),
            "prompt_length": (1, 2, 4, 8, 16, 32),
            "shots": ABLATION_SHOTS,
            "seed": SEEDS,
        },
        description="Figure 5 (left): prompt lengths",
    ),
    "alpha": GridPreset(
        {
            "method": ("mpt",),
            "alpha": tuple(round(0.1 * step, 1) for step in range(11)),
            "shots": ABLATION_SHOTS,
            "seed": SEEDS,
        },
        description="Figure 5 (middle): loss weight alpha from 0.0 to 1.0",
    ),
    "aux-size": GridPreset(
        {"method": ("mpt",), "shots": ABLATION_SHOTS, "seed": SEEDS},
        variants=(
            {"aux_size": 100},
            {"aux_size": 250},
            {"aux_size": 500},
            {"aux_size": 1000},
            {"aux_size": 2000, "epochs": 15},  # "15 and 4 epochs for 2000 and 8000"
            {"aux_size": 8000, "epochs": 4},
        ),
        description="Figure 5 (right): auxiliary corpus size (needs the hub's PAWS-X train)",
    ),
}


def expand(
    preset: str | None,
    lists: Mapping[str, Sequence[Any]],
    environ: Mapping[str, str] = os.environ,
    auto_precision: Precision | None = None,
) -> list[RunConfig]:
    """The runs of a grid, in order, without duplicates (equal resolved configs);
    `auto_precision` as in RunConfig.resolved (launch.local_grid gives it for this machine)."""
    if preset is not None and preset not in GRID_PRESETS:
        raise InvalidInput(f"unknown preset {preset!r}; choose one of {', '.join(GRID_PRESETS)}")
    grid = GRID_PRESETS[preset] if preset else GridPreset()
    runs: dict[str, RunConfig] = {}
    for variant in grid.variants:
        axes = {**grid.lists, **{k: v for k, v in variant.items() if k not in lists}}
        axes.update(lists)
        names = list(axes)
        for values in itertools.product(*(_as_tuple(axes[name]) for name in names)):
            overrides = dict(zip(names, values, strict=True))
            config = build_config(preset, overrides, environ, auto_precision)
            runs.setdefault(config.run_id, config)
    return list(runs.values())


MAX_RANGE = 1000  # values in one range: 1-100000 is a typo, not a grid


def parse_values(name: str, text: str, prefix: str | None = None) -> list[Any]:
    """A comma-separated option list, typed by the RunConfig field; ints accept ranges (1-5).
    `prefix` is how the user wrote the option, for messages: `--seed ` (the default) or, in a
    selection, `seed=`."""
    kind = _field_type(name)
    shown = f"--{name.replace('_', '-')} " if prefix is None else prefix
    values: list[Any] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise InvalidInput(f"empty value in {shown}{text!r}")
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
            raise InvalidInput(f"{shown}{text!r}: expected {expected}") from None
        if high - low >= MAX_RANGE:
            raise InvalidInput(f"{shown}{item}: a range holds at most {MAX_RANGE} values")
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
    """Config fields whose value differs between runs (the grid's axes), in field order."""
    dicts = [config.to_dict() for config in configs]
    return [
        f.name
        for f in dataclasses.fields(RunConfig)
        if len({repr(values[f.name]) for values in dicts}) > 1
    ]

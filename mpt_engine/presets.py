"""The paper's experiments by name, in one place: each preset's run settings and grid lists,
Table II's rows and the ablation axes of Figures 4-5. The engine, the CLI, the TUI and the
reports read them from here.

A preset is a named set of default values; options given explicitly override them. For a grid,
it also names lists of values (crossed) and variants (settings that vary together, as Table II's
rows); the paper's grids run with the paper's settings.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mpt_engine.config import (
    E5_MODEL,
    PAPER_SHOTS,
    TINY_MODEL,
    DataKind,
    Precision,
    PromptPosition,
    RunConfig,
    TranslatorKind,
    stored_task,
)
from mpt_engine.errors import InvalidInput
from mpt_engine.sources import check_sources, default_data

SEEDS = (1, 2, 3, 4, 5)
# The paper does not state k for Figures 4-5; we use Table II's 64 shots.
ABLATION_SHOTS = (64,)

# Table II: each row and how its configuration differs from the original MPT.
TABLE2_ROWS = (
    ("Original MPT", {}),
    ("w/o consistency loss", {"alpha": 1.0}),
    ("w/o external data", {"aux": "xnli-dev"}),
    ("w/o prompt translator", {"translator": "none"}),
    ("w/o translator, own p^T", {"translator": "separate"}),  # the other reading (ours)
    ("w/o MPT framework", {"method": "sp"}),
)


@dataclass(frozen=True)
class Ablation:
    """One of Figures 4-5: the field on the x axis, its points (each a variant of MPT), and
    the fields tied to it that may differ between points."""

    axis: str
    points: tuple[dict[str, Any], ...]
    tied: tuple[str, ...] = ()
    description: str = ""

    @property
    def numeric(self) -> bool:
        return all(isinstance(point[self.axis], int | float) for point in self.points)

    def order(self, value: Any) -> tuple:
        """Where a value sits on the axis: the order of the points, then any other value."""
        values = [point[self.axis] for point in self.points]
        return (values.index(value), value) if value in values else (len(values), value)


NOT_ARCHITECTURES = (TranslatorKind.NONE, TranslatorKind.SEPARATE)  # Table II's, not Figure 4's


def _points(axis: str, values) -> tuple[dict[str, Any], ...]:
    return tuple({axis: value} for value in values)


ABLATIONS = {
    "translator": Ablation(
        "translator",
        _points(
            "translator",
            (
                k.value
                for k in TranslatorKind
                if k not in (TranslatorKind.NONE, TranslatorKind.SEPARATE)
            ),
        ),
        description="Figure 4 (left): six translator architectures",
    ),
    "position": Ablation(
        "position",
        _points("position", (p.value for p in PromptPosition)),
        description="Figure 4 (right): four prompt positions of Eq. (9)",
    ),
    "prompt-length": Ablation(
        "prompt_length",
        _points("prompt_length", (1, 2, 4, 8, 16, 32)),
        description="Figure 5 (left): prompt lengths",
    ),
    "alpha": Ablation(
        "alpha",
        _points("alpha", (round(0.1 * step, 1) for step in range(11))),
        description="Figure 5 (middle): loss weight alpha from 0.0 to 1.0",
    ),
    "aux-size": Ablation(
        "aux_size",
        (
            *_points("aux_size", (100, 250, 500, 1000)),
            {"aux_size": 2000, "epochs": 15},  # "15 and 4 epochs for 2000 and 8000"
            {"aux_size": 8000, "epochs": 4},
        ),
        tied=("epochs",),  # the paper shortened training for 2000 and 8000 pairs
        description="Figure 5 (right): auxiliary corpus size (needs the hub's PAWS-X train)",
    ),
}


@dataclass(frozen=True)
class Preset:
    settings: dict[str, Any] = field(default_factory=dict)  # run defaults
    lists: dict[str, tuple] = field(default_factory=dict)  # a grid's crossed values
    # Settings that vary together (Table II's rows); the lists are crossed with each variant.
    variants: tuple[dict[str, Any], ...] = ({},)
    description: str = ""


def matched_epochs(settings: Mapping[str, Any]) -> int:
    """SP's epochs for as many updates as MPT: an MPT epoch covers the longer of the English
    k-shot stream (3k) and the auxiliary corpus, an SP epoch only the k-shot stream."""
    english = 3 * settings["shots"]
    mpt_steps = math.ceil(max(english, settings["aux_size"] or 0) / settings["batch_size"])
    sp_steps = math.ceil(english / settings["batch_size"])
    return settings["epochs"] * mpt_steps // sp_steps


# A variant key, not a run setting: SP's epochs then give it as many updates as MPT would make
# with the run's other settings (its k, epochs, batch size and the preset's auxiliary corpus);
# grid.expand computes them run by run. A control the paper lacks: at few shots MPT makes many
# times SP's updates (its epoch covers the auxiliary corpus), so an MPT-SP gap could come from
# training longer.
UPDATES_OF = "updates_of"
SP_WITH_MPT_UPDATES = {"method": "sp", UPDATES_OF: "mpt"}


# A few-shot setting that a 2-core CPU trains in minutes on e5-small: 256 shots per class (the
# paper's fixed split) for 2 epochs at lr 5e-5, batch 16, so 96 updates see 768 distinct
# examples (fewer shots for more epochs memorised them and stayed at chance); 192 auxiliary
# pairs, fewer than 3k, so SP makes as many updates as MPT.
E5_SETTINGS: dict[str, Any] = {
    "model": E5_MODEL,
    "shots": 256,
    "epochs": 2,
    "batch_size": 16,
    "lr": 5e-5,
    "aux_size": 192,
}
TRANSFER = {**E5_SETTINGS, "test_limit": 300}
# Table I's shape on e5-small in CPU hours: the transfer settings, with more epochs where k is
# small (30 at k = 4, where the paper has 50; fewer as k grows, so that a run stays within
# minutes) and 96 auxiliary pairs (six updates an epoch: MPT makes at most 180 updates).
FEWSHOT = {**TRANSFER, "aux_size": 96}
FEWSHOT_EPOCHS = {4: 30, 16: 12, 64: 4, 256: 2}

PRESETS: dict[str, Preset] = {
    "smoke": Preset(
        {
            "model": TINY_MODEL,
            "data": DataKind.SYNTHETIC,
            "epochs": 3,
            "batch_size": 8,
            "lr": 1e-3,
            "max_length": 128,
            "test_limit": 200,
            "aux_size": 48,
        },
        {"method": ("sp", "mpt"), "shots": (4,), "seed": (1, 2)},
        description="2 methods x 2 seeds of the tiny offline setting",
    ),
    # Real cross-lingual transfer on a CPU: MPT on e5-small with the staged XNLI data
    # (MPT_DATA_DIR), about 10 minutes on 2 cores once e5-small is built.
    "demo": Preset(
        {**E5_SETTINGS, "method": "mpt", "test_limit": 200},
        {"seed": (1,)},
        description="MPT on e5-small: real transfer on a CPU",
    ),
    "transfer": Preset(
        TRANSFER,
        {"seed": (1, 2, 3)},
        variants=(
            {"method": "mpt"},
            {"method": "sp"},
            SP_WITH_MPT_UPDATES,  # the same run as SP here: 192 pairs, 768 examples
            {"method": "pct"},
            {"method": "ft"},
        ),
        description="FT, SP, PCT, MPT and SP with MPT's updates on e5-small, 3 seeds",
    ),
    "paper": Preset(lists={"seed": SEEDS}, description="one configuration, 5 seeds"),
    "table1": Preset(
        lists={"method": ("ft", "sp", "pct", "mpt"), "shots": PAPER_SHOTS, "seed": SEEDS},
        variants=({}, SP_WITH_MPT_UPDATES),
        description="Table I: 4 methods x 9 shot settings x 5 seeds, and SP with MPT's updates",
    ),
    "table2": Preset(
        lists={"shots": (64,), "seed": SEEDS},
        variants=(
            *({"method": "mpt", **change} for _, change in TABLE2_ROWS),
            SP_WITH_MPT_UPDATES,
        ),
        description="Table II: MPT and its ablations at 64 shots x 5 seeds, plus a second "
        "reading of 'w/o prompt translator' and SP with MPT's updates",
    ),
    "fewshot": Preset(
        FEWSHOT,
        {"seed": (1, 2, 3)},
        variants=tuple(
            {"shots": shots, "epochs": epochs, **variant}
            for shots, epochs in FEWSHOT_EPOCHS.items()
            for variant in (
                {"method": "ft"},
                {"method": "sp"},
                {"method": "pct"},
                {"method": "mpt"},
                SP_WITH_MPT_UPDATES,
                {"method": "mpt", "aux": "xnli-dev"},  # aligns all 14 targets, pawsx only 4
            )
        ),
        description="Table I's shape on e5-small: FT, SP, PCT, MPT at k = 4, 16, 64, 256 x 3 "
        "seeds, with SP given MPT's updates and MPT aligned on XNLI dev",
    ),
    **{
        name: Preset(
            lists={"method": ("mpt",), "shots": ABLATION_SHOTS, "seed": SEEDS},
            variants=ablation.points,
            description=ablation.description,
        )
        for name, ablation in ABLATIONS.items()
    },
}


def preset_settings(preset: str | None, environ: Mapping[str, str] = os.environ) -> dict:
    """A preset's run settings as its runs get them: local data when MPT_DATA_DIR is set."""
    values: dict[str, Any] = dict(PRESETS[preset].settings) if preset else {}
    if default_data(environ) is DataKind.LOCAL:
        values["data"] = DataKind.LOCAL
    return values


def build_config(
    preset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] = os.environ,
    auto_precision: Precision | None = None,
) -> RunConfig:
    """Dataclass defaults < preset < MPT_DATA_DIR (selects local data) < explicit overrides;
    `auto_precision` as in RunConfig.resolved."""
    if preset is not None and preset not in PRESETS:
        raise InvalidInput(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    values = preset_settings(preset, environ)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    config = RunConfig(**values).resolved(auto_precision)
    check_sources(config, environ)
    if config.aux is not None and config.aux.startswith("file:"):  # the same file from anywhere
        path = os.path.abspath(os.path.expanduser(config.aux.removeprefix("file:")))
        config = dataclasses.replace(config, aux=f"file:{path}")
    config = dataclasses.replace(config, task=stored_task(config.task))
    from mpt_engine.data.files import with_data_digest  # mpt_engine.data imports torch

    return with_data_digest(config, environ)

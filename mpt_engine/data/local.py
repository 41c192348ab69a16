"""A local data folder in the layout of shared/data (see its README), named by MPT_DATA_DIR."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mpt_engine.data.examples import Example
from mpt_engine.errors import InvalidInput, SourceUnavailable
from mpt_engine.jsonl import read_jsonl
from mpt_engine.languages import LABELS


class LocalSource:
    name = "local"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise SourceUnavailable(f"MPT_DATA_DIR {self.root} is not a folder")

    def xnli_path(self, split: str, language: str) -> Path:
        return self.root / "xnli" / split / f"{language}.jsonl"

    def paper_split_path(self, split: str, shots: int) -> Path:
        return self.root / "kshot" / split / f"en-{shots}.jsonl"

    def pawsx_path(self, language: str) -> Path:
        return self.root / "pawsx" / "dev" / f"{language}.jsonl"

    def xnli(self, split: str, language: str) -> list[Example]:
        """split: test, dev, or train (English only, if the folder has xnli/train/en.jsonl)."""
        path = self.xnli_path(split, language)
        if split == "train" and not path.exists():
            raise SourceUnavailable(
                f"{path} is missing: sampled k-shot splits need the English training pool; "
                "use one of the paper's k values, or the hub (unset MPT_DATA_DIR)"
            )
        return [
            Example(row["premise"], row["hypothesis"], _label(path, number, row["label"]))
            for number, row in read_jsonl(path, ("premise", "hypothesis", "label"))
        ]

    def paper_split(self, split: str, shots: int) -> list[Example]:
        path = self.paper_split_path(split, shots)
        return [
            Example(row["sentence1"], row["sentence2"], _label(path, number, row["gold"]))
            for number, row in read_jsonl(path, ("sentence1", "sentence2", "gold"))
        ]

    def pawsx(self, language: str) -> dict[int, Example]:
        """PAWS-X human-translated dev pairs keyed by row (the dev files are row-parallel)."""
        path = self.pawsx_path(language)
        return {
            _index(path, number, row.get("idx", number - 1)): Example(
                row["sentence1"], row["sentence2"]
            )
            for number, row in read_jsonl(path, ("sentence1", "sentence2"))
        }


def _label(path: Path, number: int, value: str) -> int:
    if value not in LABELS:
        raise InvalidInput(f"{path}:{number}: unknown label {value!r}")
    return LABELS.index(value)


def _index(path: Path, number: int, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{path}:{number}: idx must be an integer, got {value!r}")
    return value

"""Local data files: a task's (its data.local paths, below MPT_DATA_DIR for a built-in task or
beside a user's task file) and, below MPT_DATA_DIR in the layout of shared/data (see its README),
the paper's k-shot splits and PAWS-X's parallel pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mpt_engine.data.examples import Example, Source
from mpt_engine.errors import InvalidInput, SourceUnavailable
from mpt_engine.jsonl import read_jsonl
from mpt_engine.tasks import Task, load_task


class LocalSource(Source):
    name = "local"

    def __init__(self, root: str | Path | None) -> None:
        """`root`: the MPT_DATA_DIR folder (None: unset, which only a user's task can do with)."""
        self._root = None if root is None else Path(root).expanduser()
        if self._root is not None and not self._root.is_dir():
            raise SourceUnavailable(f"MPT_DATA_DIR {self._root} is not a folder")

    @property
    def root(self) -> Path:
        if self._root is None:
            raise InvalidInput("data 'local' needs MPT_DATA_DIR to name the data folder")
        return self._root

    def path(self, task: Task, split: str, language: str) -> Path:
        if split not in task.local:
            raise SourceUnavailable(f"task {task.name} has no local {split} data (data.local)")
        root = self.root if task.folder is None else task.folder
        return root / task.local[split].format(language=language)

    def paper_split_path(self, split: str, shots: int) -> Path:
        return self.root / "kshot" / split / f"en-{shots}.jsonl"

    def pawsx_path(self, language: str) -> Path:
        return self.root / "pawsx" / "dev" / f"{language}.jsonl"

    def same_rows(self, task: Task, split: str, other: str) -> bool:
        """Whether two splits read the same files (PAWS-X offline: train, dev and test)."""
        return task.local.get(split) is not None and task.local.get(split) == task.local.get(other)

    def examples(self, task: Task, split: str, language: str) -> list[Example]:
        """A split of the task in one language, in file order; train is the source language's
        pool that sampled k-shot splits are drawn from."""
        path = self.path(task, split, language)
        if split == "train" and not path.exists():
            raise SourceUnavailable(
                f"{path} is missing: sampled k-shot splits need the English training pool; "
                "use one of the paper's k values, or the hub (unset MPT_DATA_DIR)"
            )
        first, *second = task.fields
        return [
            Example(
                row[first],
                row[second[0]] if second else "",
                _label(path, number, task, row.get(task.label_field)),
            )
            for number, row in read_jsonl(path, task.fields)
        ]

    def paper_split(self, split: str, shots: int) -> list[Example]:
        path = self.paper_split_path(split, shots)
        xnli = load_task()
        return [
            Example(row["sentence1"], row["sentence2"], _label(path, number, xnli, row["gold"]))
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


def _label(path: Path, number: int, task: Task, value: Any) -> int:
    try:
        return task.label_index(value)
    except ValueError as error:
        raise InvalidInput(f"{path}:{number}: {error}") from None


def _index(path: Path, number: int, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{path}:{number}: idx must be an integer, got {value!r}")
    return value

"""Data from the Hugging Face Hub (facebook/xnli, google-research-datasets/paws-x).

The paper's fixed k-shot splits are not on the hub: they are fetched once, at a pinned commit,
from the repository of Zhao & Schütze (2021) and cached.
"""

from __future__ import annotations

import contextlib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from mpt_engine import hub
from mpt_engine.data.examples import Example, Source
from mpt_engine.data.local import LocalSource
from mpt_engine.errors import SourceUnavailable
from mpt_engine.paths import cache_entry, cached
from mpt_engine.tasks import Task

PAWSX_DATASET = "google-research-datasets/paws-x"
KSHOT_URL = (
    "https://raw.githubusercontent.com/mprompting/xlmrprompt/"
    "39aed8fa0bbb934a2ef60569c016f25bcb66c387/common_datasets/{split}/en/{split}_split,{shots}.jsonl"
)


class HubSource(Source):
    name = "hub"

    def same_rows(self, task: Task, split: str, other: str) -> bool:
        splits = task.hub.get("splits", {})
        return splits.get(split) is not None and splits.get(split) == splits.get(other)

    def examples(self, task: Task, split: str, language: str) -> list[Example]:
        if not task.hub or split not in task.hub["splits"]:
            raise SourceUnavailable(f"task {task.name} has no {split} split on the hub")
        config = task.hub["config"].format(language=language)
        rows = _load(task.hub["dataset"], config, task.hub["splits"][split])
        first, *second = task.fields
        return [
            Example(row[first], row[second[0]] if second else "", row[task.label_field])
            for row in rows
        ]

    def paper_split(self, split: str, shots: int) -> list[Example]:
        folder = cache_entry("kshot")
        url = KSHOT_URL.format(split=split, shots=shots)
        cached(folder / split / f"en-{shots}.jsonl", lambda partial: _download(url, partial), Path)
        return LocalSource(folder.parent).paper_split(split, shots)

    def pawsx(self, language: str) -> dict[str, Example]:
        """PAWS-X training pairs keyed by id (machine-translated for languages other than en)."""
        rows = _load(PAWSX_DATASET, language, "train")
        return {row["id"]: Example(row["sentence1"], row["sentence2"]) for row in rows}


def _load(dataset: str, config: str, split: str):
    offline = hub.offline()
    try:
        with _datasets_offline(offline):
            import datasets

            return datasets.load_dataset(dataset, config, split=split)
    except (ConnectionError, OSError, ValueError) as error:
        reason = "the hub is unreachable and it is not cached" if offline else str(error)
        raise SourceUnavailable(
            f"cannot load {dataset} ({config}, {split}): {reason}; {hub.DATA_HINT}"
        ) from None


@contextlib.contextmanager
def _datasets_offline(offline: bool) -> Iterator[None]:
    """datasets in its offline mode for the block when the hub is out of reach, so that it goes
    to its cache at once instead of trying the hub first. datasets reads HF_HUB_OFFLINE once, at
    import, into its config: set there for the block and restored, never in the environment."""
    import datasets

    saved = datasets.config.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = saved or offline
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE = saved


def _download(url: str, path: Path) -> None:
    if hub.offline() or not hub.reachable("raw.githubusercontent.com"):
        raise SourceUnavailable(
            f"cannot fetch the paper's k-shot split {url.rsplit('/', 1)[-1]} from GitHub: offline; "
            f"{hub.DATA_HINT}"
        )
    with urllib.request.urlopen(url, timeout=30) as response:
        path.write_bytes(response.read())

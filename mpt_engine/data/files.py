"""The data files a run reads, named by their content: a run's identity covers what it reads,
not where the files lie (DESIGN: "the content of the data it reads").

Hub data is named by its dataset ids (and the paper's k-shot splits by a pinned commit) and
synthetic data by the code that makes it, so only local files (MPT_DATA_DIR, `--aux file:PATH`,
a built PAWS-15) are hashed. Hashes are kept per process by path, inode, size and modification
time: a grid of hundreds of runs reads each file once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from mpt_engine.config import DataKind, Method, RunConfig, SplitKind
from mpt_engine.data.aux import PAWSX_LANGUAGES, paws15_path
from mpt_engine.data.local import LocalSource
from mpt_engine.errors import InvalidInput
from mpt_engine.languages import SOURCE_LANGUAGE, TARGET_LANGUAGES
from mpt_engine.settled import settled
from mpt_engine.sources import DATA_DIR
from mpt_engine.tasks import Task, load_task, task_file

MISSING = "missing"  # loading the run reports the missing file, with its own message
_hashes: dict[tuple, str] = {}


def data_files(config: RunConfig, data_dir: str | None = None) -> dict[str, Path]:
    """The files a run reads, keyed by their role: a path inside the data folder, `task/PATH`
    beside a user's task file, `task` for that file itself, or `aux`."""
    config = config.resolved()
    task = load_task(config.task)
    files: dict[str, Path] = {}
    if task.folder is not None:
        files["task"] = task_file(config.task)
    uses_aux = config.method is Method.MPT and config.aux not in (None, "none")
    if config.data is DataKind.LOCAL and (data_dir or task.folder is not None):
        source = LocalSource(data_dir)
        language = task.source_language
        paths = [source.path(task, "test", target) for target in task.languages]
        if config.split is SplitKind.PAPER:
            paths += [source.paper_split_path(split, config.shots) for split in ("train", "dev")]
        else:
            paths += [source.path(task, split, language) for split in ("train", "dev")]
        if uses_aux and config.aux == "pawsx":
            shared = [lang for lang in PAWSX_LANGUAGES if lang in task.target_languages]
            paths += [source.pawsx_path(lang) for lang in (SOURCE_LANGUAGE, *shared)]
        elif uses_aux and config.aux == "xnli-dev":
            xnli = load_task()
            shared = [lang for lang in TARGET_LANGUAGES if lang in task.target_languages]
            paths += [source.path(xnli, "dev", lang) for lang in (SOURCE_LANGUAGE, *shared)]
        files.update((_role(path, source, task), path) for path in paths)
    if uses_aux and config.aux == "paws15":
        files["aux"] = paws15_path()
    elif uses_aux and config.aux.startswith("file:"):
        files["aux"] = Path(config.aux.removeprefix("file:")).expanduser()
    return files


def _role(path: Path, source: LocalSource, task: Task) -> str:
    """A data file named where it lies: below the data folder, or beside a user's task file."""
    if task.folder is not None and path.is_relative_to(task.folder):
        return f"task/{path.relative_to(task.folder).as_posix()}"
    return path.relative_to(source.root).as_posix()


def content_hash(path: Path) -> str:
    """sha256 of a file's bytes (MISSING when it cannot be read). Only a regular file is read: a
    FIFO would block and /dev/zero never end; the readers refuse those with one line later."""
    try:
        stat = path.stat()
    except OSError:
        return MISSING
    if not path.is_file():
        return MISSING
    key = (str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key not in _hashes:
        digest = hashlib.sha256()
        try:
            with path.open("rb") as file:
                while chunk := file.read(1 << 20):
                    digest.update(chunk)
        except OSError:
            return MISSING
        if not settled(stat.st_mtime_ns):
            return digest.hexdigest()
        _hashes[key] = digest.hexdigest()
    return _hashes[key]


def data_digest(config: RunConfig, environ: Mapping[str, str] = os.environ) -> str | None:
    """A hash of the content of the files the run reads, None when it reads none."""
    files = data_files(config, environ.get(DATA_DIR))
    if not files:
        return None
    contents = {role: content_hash(path) for role, path in files.items()}
    return hashlib.sha256(json.dumps(contents, sort_keys=True).encode()).hexdigest()[:16]


def with_data_digest(config: RunConfig, environ: Mapping[str, str] = os.environ) -> RunConfig:
    """The config with the digest of the data it reads now; InvalidInput when the config was
    planned with other data (a file edited while a grid ran)."""
    digest = data_digest(config, environ)
    if config.data_digest is not None and config.data_digest != digest:
        raise InvalidInput(
            f"the data of run {config.run_id} changed after it was planned; "
            "run the command again to train on the current data"
        )
    return dataclasses.replace(config, data_digest=digest)

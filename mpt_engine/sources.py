"""What can be checked of a run's sources before anything is loaded: the data folder that
MPT_DATA_DIR names and the model reference (a hub id, a local folder, or a built-in name)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from mpt_engine.config import DEFAULT_TASK, E5_REVISIONS, TINY_MODEL, DataKind, Method, RunConfig
from mpt_engine.errors import InvalidInput, SourceUnavailable

HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")
DATA_DIR = "MPT_DATA_DIR"  # names a local data folder in the layout of shared/data


def default_data(environ: Mapping[str, str] = os.environ) -> DataKind:
    """What runs read unless told otherwise: the folder MPT_DATA_DIR names, else the hub."""
    return DataKind.LOCAL if environ.get(DATA_DIR) else DataKind.HUB


def data_folder(environ: Mapping[str, str] = os.environ) -> str:
    """The local data folder; InvalidInput when MPT_DATA_DIR is unset, SourceUnavailable when
    it names no folder."""
    root = environ.get(DATA_DIR)
    if not root:
        raise InvalidInput(f"data 'local' needs {DATA_DIR} to name the data folder", field="data")
    if not os.path.isdir(os.path.expanduser(root)):
        raise SourceUnavailable(f"{DATA_DIR} {root} is not a folder")
    return root


def check_sources(config: RunConfig, environ: Mapping[str, str] = os.environ) -> None:
    """What can be checked before anything is loaded: the task file, the data folder and the
    model reference."""
    from mpt_engine.tasks import load_task

    task = load_task(config.task)
    reads_aux = config.method is Method.MPT and config.aux in ("pawsx", "xnli-dev")
    if config.data is DataKind.LOCAL and (task.folder is None or reads_aux):
        data_folder(environ)  # a built-in task's files, or an auxiliary corpus, lie there
    if config.data is DataKind.HUB and not task.hub:
        raise InvalidInput(
            f"task {task.name} has no hub data; use {{data}} local", field="data", value="hub"
        )
    if config.data is DataKind.SYNTHETIC and config.task != DEFAULT_TASK:
        raise InvalidInput(
            f"synthetic data is XNLI-shaped; task {task.name} needs {{data}} local or hub",
            field="data",
            value="synthetic",
        )
    if config.model in E5_REVISIONS:
        from mpt_engine.e5small.build import check_available

        check_available(config.model)
    elif config.model != TINY_MODEL:
        local_model(config.model)


def local_model(name: str) -> str | None:
    """The folder a model reference names (None: a hub id). SourceUnavailable when the folder or
    its config.json is missing, InvalidInput when the name is neither a path nor a hub id."""
    path = os.path.expanduser(name)
    if os.path.exists(path) or name.startswith((".", "/", "~")):
        if not os.path.isdir(path):
            raise SourceUnavailable(f"{{model}} {name}: no such folder", field="model")
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise SourceUnavailable(
                f"{{model}} {name} is not a model folder (no config.json)", field="model"
            )
        return path
    if not HUB_ID.match(name):
        raise InvalidInput(
            f"{{model}} {name!r} is neither a local folder nor a hub id", field="model"
        )
    return None

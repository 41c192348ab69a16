"""The launcher's last selections, remembered between sessions (platformdirs state folder)."""

from __future__ import annotations

import json

from mpt_engine.paths import state_dir
from mpt_engine.store import write_json

STATE_FILE = "launcher.json"


def load() -> dict[str, str]:
    try:
        values = json.loads((state_dir() / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return {k: v for k, v in values.items() if isinstance(k, str) and isinstance(v, str)}


def save(values: dict[str, str]) -> None:
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / STATE_FILE, values)

"""The launcher's last selections, remembered between sessions (platformdirs state folder)."""

from __future__ import annotations

import json

from mpt_engine.paths import state_dir
from mpt_engine.safe_files import write_json

STATE_FILE = "launcher.json"


def load() -> tuple[dict[str, str], str | None]:
    """The remembered form, and a notice when the file was there but unusable (not UTF-8 JSON,
    not an object): it is ignored, never fatal, and replaced at the next launch."""
    path = state_dir() / STATE_FILE
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return {}, f"ignored the remembered form {path}: {error}"
    if not isinstance(values, dict):
        return {}, f"ignored the remembered form {path}: not a JSON object"
    return {k: v for k, v in values.items() if isinstance(k, str) and isinstance(v, str)}, None


def save(values: dict[str, str]) -> None:
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / STATE_FILE, values)

"""The reproducibility record of a run: versions, git state, machine, data fingerprints, times."""

from __future__ import annotations

import platform
import socket
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = ("mpt", "torch", "transformers", "tokenizers", "datasets", "safetensors")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def minute(timestamp: str) -> str:
    """A record's time, `2026-11-24T22:37:08+00:00` (UTC), as `2026-11-24 22:37`."""
    return timestamp[:16].replace("T", " ")


def collect() -> dict[str, Any]:
    return {
        "started_at": now(),
        "command": sys.argv,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "git": _git_state(Path(__file__).resolve().parent.parent),
    }


def device_name(device) -> str:
    if device.type == "cuda":
        import torch

        return torch.cuda.get_device_name(device)
    return f"{device.type} ({platform.processor() or platform.machine()})"


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git_state(folder: Path) -> dict[str, Any] | None:
    """The commit of the mpt checkout and whether it had uncommitted changes."""
    if not (folder / ".git").exists():
        return None
    try:
        commit = _git(folder, "rev-parse", "HEAD")
        dirty = bool(_git(folder, "status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def _git(folder: Path, *args: str) -> str:
    completed = subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=5, check=True
    )
    return completed.stdout.strip()

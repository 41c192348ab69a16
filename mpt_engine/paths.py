"""Every directory mpt writes to, in one place."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from mpt_engine.errors import InvalidInput


def home() -> Path:
    """Root of the run store: MPT_HOME, or the platform's user data folder for "mpt"."""
    configured = os.environ.get("MPT_HOME")
    if not configured:
        return platformdirs.user_data_path("mpt")
    return _folder(Path(configured).expanduser(), "MPT_HOME")


def runs_dir() -> Path:
    return home() / "runs"


def cache_dir() -> Path:
    """Regenerable files (tiny tokenizers, downloaded splits): MPT_CACHE or the user cache."""
    configured = os.environ.get("MPT_CACHE")
    if not configured:
        return platformdirs.user_cache_path("mpt")
    return _folder(Path(configured).expanduser(), "MPT_CACHE")


def state_dir() -> Path:
    """Non-essential state (the app's last selections): the user state folder."""
    return platformdirs.user_state_path("mpt")


def _folder(path: Path, variable: str) -> Path:
    """`path` when it is a folder or can become one (its nearest existing ancestor is a folder);
    InvalidInput otherwise, before anything tries to write there."""
    existing = next(parent for parent in (path, *path.parents) if parent.exists())
    if not existing.is_dir():
        raise InvalidInput(f"{variable} {path} is not a folder ({existing} is not a folder)")
    return path

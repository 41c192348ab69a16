"""Every directory mpt writes to, in one place."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def home() -> Path:
    """Root of the run store: MPT_HOME, or the platform's user data folder for "mpt"."""
    configured = os.environ.get("MPT_HOME")
    return Path(configured).expanduser() if configured else platformdirs.user_data_path("mpt")


def runs_dir() -> Path:
    return home() / "runs"


def cache_dir() -> Path:
    """Regenerable files (tiny tokenizers, downloaded splits): MPT_CACHE or the user cache."""
    configured = os.environ.get("MPT_CACHE")
    return Path(configured).expanduser() if configured else platformdirs.user_cache_path("mpt")


def state_dir() -> Path:
    """Non-essential state (the app's last selections): the user state folder."""
    return platformdirs.user_state_path("mpt")

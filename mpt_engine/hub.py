"""Whether the Hugging Face Hub can be reached, decided once per process and quickly.

Offline, the hub libraries retry for about a minute before failing. We probe the endpoint with a
short TCP connect instead; when it fails (or HF_HUB_OFFLINE is set), hub loads use only the
local cache and a miss becomes one clear SourceUnavailable error.
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

DATA_HINT = (
    "set MPT_DATA_DIR to a local data folder and pass {model} PATH for a local model, "
    "or use {preset} smoke"
)
MODEL_HINT = "pass {model} PATH for a local model folder, or {model} tiny"


@functools.cache
def offline() -> bool:
    """Whether the hub is out of reach (asked once per process). It only answers: each loader
    is told to use its cache (local_files_only, data.hub's offline datasets), and the
    environment that child processes inherit is left as it was."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return True
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    return not reachable(endpoint.hostname or "", port)


def reachable(host: str, port: int = 443) -> bool:
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError:
        return False
    return True

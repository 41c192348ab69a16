"""Engine messages in the app's words: they name command-line options (`--aux-size 'x'`) and
config fields (`aux_size must be ...`), where the app has fields with labels."""

from __future__ import annotations

import re
from collections.abc import Mapping

OPTION_OR_FIELD = re.compile(r"--([a-z][a-z-]*)|^([a-z][a-z_]*)(?= must be)")


def in_app_words(problem: Exception | str, labels: Mapping[str, str] | None = None) -> str:
    """The message with each option or field named by its label (else by its plain name)."""

    def label(match: re.Match) -> str:
        name = (match[1] or match[2]).replace("-", "_")
        return (labels or {}).get(name, name.replace("_", " "))

    return OPTION_OR_FIELD.sub(label, str(problem))

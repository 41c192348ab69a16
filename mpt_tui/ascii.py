"""Output for terminals and pipes that cannot encode Unicode (PYTHONIOENCODING=ascii or
latin-1, a C locale): characters the stream cannot encode degrade to ASCII instead of ending
the command with UnicodeEncodeError."""

from __future__ import annotations

import codecs
import io
import sys
import unicodedata

ERRORS = "mpt-ascii"
REPLACEMENTS = {
    "—": "-",
    "–": "-",
    "±": "+/-",
    "·": "-",
    "×": "x",
    "…": "...",
    "→": "->",
    "†": "*",
    "≥": ">=",
}


def ascii_for(char: str) -> str:
    """An ASCII stand-in: a fixed one for our punctuation, lines and dots for box drawing,
    blocks and braille (plots), the letter without its accent, else '?'."""
    if char in REPLACEMENTS:
        return REPLACEMENTS[char]
    code = ord(char)
    if 0x2500 <= code <= 0x257F:  # box drawing
        name = unicodedata.name(char, "")
        return "-" if "HORIZONTAL" in name else "|" if "VERTICAL" in name else "+"
    if 0x2580 <= code <= 0x28FF:  # blocks and braille: the points of a terminal plot
        return "*"
    stripped = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
    return stripped or "?"


def _degrade(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start : error.end]
    return "".join(ascii_for(char) for char in text), error.end


def degrade_unencodable_output() -> None:
    """Make stdout and stderr replace what their encoding lacks (UTF-8 streams are left as
    they are)."""
    codecs.register_error(ERRORS, _degrade)
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        if isinstance(stream, io.TextIOWrapper) and encoding not in ("utf8", "utf8sig"):
            stream.reconfigure(errors=ERRORS)

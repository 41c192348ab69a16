"""Reading JSON Lines files with errors that name the file and the line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mpt_engine.errors import InvalidInput, SourceUnavailable


def read_jsonl(path: Path, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; bad lines raise InvalidInput."""
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise SourceUnavailable(f"missing data file {path}") from None
    except OSError as error:
        raise SourceUnavailable(f"cannot read {path}: {error.strerror}") from None
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise InvalidInput(f"{path}:{number}: not valid JSON ({error.msg})") from None
                if not isinstance(row, dict):
                    raise InvalidInput(f"{path}:{number}: expected a JSON object")
                missing = [name for name in required if not isinstance(row.get(name), str)]
                if missing:
                    raise InvalidInput(
                        f"{path}:{number}: missing text field(s) {', '.join(missing)}"
                    )
                yield number, row
        except UnicodeDecodeError:
            raise InvalidInput(f"{path}: not UTF-8 text") from None

"""Reading a run's events.jsonl as it grows.

The file is only ever appended to (store.py), so a reader keeps what it parsed and the byte
offset it reached, and reads only what was appended since: the TUI rereads the events of every
run being trained every two seconds, and a long run's file holds thousands of lines. A file that
shrank or was replaced (another inode, or other bytes before the offset) is read afresh. Where
only the last event matters (a run's stored status), only the file's tail is read.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpt_engine.events import RunFinished, RunStopped
from mpt_engine.safe_files import NO_FOLLOW

KEPT_FILES = 256  # the runs a screen follows, and more
KEPT_BYTES = 64 * 2**20  # of the files read: a run killed while testing is never "ended"
CHECK_BYTES = 64  # the bytes before the offset, compared to tell a replaced file
ENDED = {RunFinished.kind, RunStopped.kind}  # an attempt's last event
TAIL_BYTES = 16_384  # many times the longest event line but test_evaluated's


@dataclass(frozen=True)
class _Parsed:
    inode: tuple[int, int]
    offset: int  # the end of the last complete line read
    before: bytes  # the CHECK_BYTES before `offset`
    events: tuple[dict[str, Any], ...]  # the latest attempt's, up to `offset`


_kept: OrderedDict[str, _Parsed] = OrderedDict()
_lock = threading.Lock()


def read_events(path: Path) -> list[dict[str, Any]]:
    """Events of the run's latest attempt (from its last run_started on: the file keeps every
    attempt of a restarted run); a torn line (a writer killed mid-line) is ignored. An
    unterminated last line counts when it parses: it may be a line being written. The events
    are shared with later reads of the file: do not change them."""
    try:
        handle = os.open(path, os.O_RDONLY | NO_FOLLOW)
    except OSError:
        return []
    with os.fdopen(handle, "rb") as file:
        status = os.fstat(file.fileno())
        inode = (status.st_dev, status.st_ino)
        with _lock:
            parsed = _kept.get(str(path))
        if parsed is None or not _continues(file, parsed, inode, status.st_size):
            parsed = _Parsed(inode, 0, b"", ())
        file.seek(parsed.offset)
        appended = file.read()
    complete, newline, unterminated = appended.rpartition(b"\n")
    if newline:
        read = parsed.offset + len(complete) + 1
        before = (parsed.before + complete + b"\n")[-CHECK_BYTES:]
        parsed = _Parsed(inode, read, before, _latest_attempt(parsed.events, complete))
        _keep(str(path), parsed)
    return list(_latest_attempt(parsed.events, unterminated))


def _keep(key: str, parsed: _Parsed) -> None:
    """Kept while the run may still grow: a run that ended (its test predictions are in its
    file) is read once by whoever needs it, and many such would fill the memory."""
    ended = parsed.events and parsed.events[-1].get("event") in ENDED
    with _lock:
        _kept.pop(key, None)
        if not ended:
            _kept[key] = parsed
            while len(_kept) > KEPT_FILES or sum(p.offset for p in _kept.values()) > KEPT_BYTES:
                _kept.popitem(last=False)


def last_event(path: Path) -> dict[str, Any]:
    """The file's last event ({} when it has none), read from its tail."""
    try:
        handle = os.open(path, os.O_RDONLY | NO_FOLLOW)
    except OSError:
        return {}
    with os.fdopen(handle, "rb") as file:
        start = max(0, os.fstat(file.fileno()).st_size - TAIL_BYTES)
        file.seek(start)
        lines = file.read().split(b"\n")
    whole = lines if start == 0 else lines[1:]  # the first may be the end of a longer line
    for line in reversed(whole):
        event = _parse(line)
        if event is not None:
            return event
    if start == 0:
        return {}
    events = read_events(path)  # no whole line in the tail
    return events[-1] if events else {}


def _continues(file, parsed: _Parsed, inode: tuple[int, int], size: int) -> bool:
    """Whether the open file is the one `parsed` read, grown or not."""
    if inode != parsed.inode or size < parsed.offset:
        return False
    file.seek(parsed.offset - len(parsed.before))
    return file.read(len(parsed.before)) == parsed.before


def _latest_attempt(events: tuple, data: bytes) -> tuple[dict[str, Any], ...]:
    """`events` followed by the events in the lines of `data`, from the last run_started on."""
    added = [event for line in data.split(b"\n") if (event := _parse(line)) is not None]
    starts = [i for i, event in enumerate(added) if event.get("event") == "run_started"]
    if starts:
        return tuple(added[starts[-1] :])
    return events + tuple(added)


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(line.decode("utf-8", errors="replace"))
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None

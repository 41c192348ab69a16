"""events.jsonl read as it grows: the same events as reading the whole file, whatever was
appended (torn lines, restarts, a line written in two pieces), from the appended bytes only."""

from __future__ import annotations

import json
import os
import random

import pytest

from mpt_engine import event_log
from mpt_engine.event_log import last_event, read_events


def whole_file(path) -> list[dict]:
    """The contract, read the simple way: every parseable line, from the last run_started."""
    events = []
    for line in path.read_bytes().decode("utf-8", errors="replace").split("\n"):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            events.append(event)
    starts = [i for i, event in enumerate(events) if event.get("event") == "run_started"]
    return events[starts[-1] :] if starts else events


def line(event: str, **fields) -> bytes:
    return (json.dumps({"event": event, **fields}) + "\n").encode()


def test_appended_pieces_read_as_the_whole_file(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"")
    draw = random.Random(7)
    for step in range(400):
        kind = draw.choice(["step", "step", "step", "start", "torn", "split", "blank", "üñï"])
        if kind == "start":
            data = line("run_started", attempt=step)
        elif kind == "torn":  # a writer killed mid-line; the next attempt repairs the line end
            data = line("train_step", step=step)[:-9] + b"\n"
        elif kind == "split":  # one line seen half written, then finished
            whole = line("dev_evaluated", epoch=step)
            with path.open("ab") as file:
                file.write(whole[:11])
            assert read_events(path) == whole_file(path)
            data = whole[11:]
        elif kind == "blank":
            data = b"\n"
        elif kind == "üñï":  # UTF-8 split across reads is decoded whole
            data = line("test_evaluated", language="ür", text="ñ" * draw.randint(1, 40))
        else:
            data = line("train_step", step=step)
        with path.open("ab") as file:
            file.write(data)
        if draw.random() < 0.5:
            assert read_events(path) == whole_file(path), step
    assert read_events(path) == whole_file(path)


def test_only_the_appended_lines_are_parsed(tmp_path, monkeypatch):
    path = tmp_path / "events.jsonl"
    path.write_bytes(line("run_started") + b"".join(line("train_step", step=i) for i in range(500)))
    assert len(read_events(path)) == 501
    parsed = []
    real_parse = event_log._parse
    monkeypatch.setattr(event_log, "_parse", lambda data: parsed.append(data) or real_parse(data))
    with path.open("ab") as file:
        file.write(line("train_step", step=500) + line("train_step", step=501))
    events = read_events(path)
    assert [event.get("step") for event in events[-2:]] == [500, 501]
    assert len(events) == 503
    assert len([data for data in parsed if data]) == 2  # not the 501 lines before


@pytest.mark.parametrize("replace", ["new file", "rewritten in place"])
def test_a_replaced_file_is_read_afresh(tmp_path, replace):
    """A run removed and trained again (mpt results rm, then a grid), even when the new file
    keeps the old one's inode and is longer than what was read."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(line("run_started", attempt=1) + line("train_step", step=1))
    assert read_events(path)[-1] == {"event": "train_step", "step": 1}
    new = line("run_started", attempt=2) + line("train_step", step=99) + line("run_failed")
    if replace == "new file":
        os.unlink(path)
        path.write_bytes(new)
    else:
        with path.open("r+b") as file:
            file.write(new)
    assert read_events(path) == whole_file(path)
    assert read_events(path)[0] == {"event": "run_started", "attempt": 2}


def test_a_shrunk_or_missing_file(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(line("run_started") + line("train_step", step=1))
    read_events(path)
    path.write_bytes(line("run_started", attempt=3))
    assert read_events(path) == [{"event": "run_started", "attempt": 3}]
    path.unlink()
    assert read_events(path) == []


def test_the_last_event_is_read_from_the_tail(tmp_path):
    path = tmp_path / "events.jsonl"
    assert last_event(path) == {}
    path.write_bytes(b"")
    assert last_event(path) == {}
    steps = b"".join(line("train_step", step=i) for i in range(2000))
    path.write_bytes(line("run_started") + steps + b'{"event": "run_fai')  # torn at the end
    assert last_event(path) == {"event": "train_step", "step": 1999}
    path.write_bytes(steps + line("run_failed", status="interrupted"))
    assert last_event(path) == {"event": "run_failed", "status": "interrupted"}
    long_last = line("test_evaluated", predictions=[1] * 3 * event_log.TAIL_BYTES)
    path.write_bytes(steps + long_last)  # no whole line in the tail: the file is read
    assert last_event(path)["event"] == "test_evaluated"


def test_only_runs_that_may_grow_are_kept(tmp_path):
    """A finished or stopped run's file (its test predictions included) is not held in memory:
    a command that reads the events of a whole store would otherwise keep them all."""
    growing, finished, stopped = (tmp_path / name for name in ("a.jsonl", "b.jsonl", "c.jsonl"))
    growing.write_bytes(line("run_started") + line("train_step", step=1))
    finished.write_bytes(line("run_started") + line("result", average=50.0))
    stopped.write_bytes(line("run_started") + line("run_failed", status="interrupted"))
    for path in (growing, finished, stopped):
        assert read_events(path)[-1] == whole_file(path)[-1]
    assert str(growing) in event_log._kept
    assert str(finished) not in event_log._kept and str(stopped) not in event_log._kept
    with stopped.open("ab") as file:  # trained again
        file.write(line("run_started", attempt=2))
    assert read_events(stopped) == [{"event": "run_started", "attempt": 2}]
    assert str(stopped) in event_log._kept


def test_kept_files_are_bounded_in_bytes(tmp_path, monkeypatch):
    """A run killed while testing never ends its file: the bytes kept are bounded all the same."""
    monkeypatch.setattr(event_log, "_kept", event_log.OrderedDict())
    steps = line("run_started") + b"".join(line("train_step", step=i) for i in range(100))
    monkeypatch.setattr(event_log, "KEPT_BYTES", int(1.5 * len(steps)))
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for path in (first, second):
        path.write_bytes(steps)
        assert len(read_events(path)) == 101
    assert list(event_log._kept) == [str(second)]
    assert read_events(first) == whole_file(first)  # read afresh

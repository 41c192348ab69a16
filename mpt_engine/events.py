"""Typed events of a run. The CLI renders them, `--json` prints them as NDJSON, the run store
appends them to events.jsonl, and the TUI turns them into messages."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, **asdict(self)}

    def to_json(self) -> str:
        """The NDJSON line, stamped with when the event was first written (`at`, UTC, in
        milliseconds): the store's line and the one `--json` prints carry the same time."""
        stamp = self.__dict__.setdefault(
            "_at", datetime.now(UTC).isoformat(timespec="milliseconds")
        )
        return json.dumps({**self.to_dict(), "at": stamp}, ensure_ascii=False)


@dataclass(frozen=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    run_id: str
    config: dict[str, Any]
    epochs: int
    steps_per_epoch: int
    device: str


@dataclass(frozen=True)
class TrainStep(Event):
    kind: ClassVar[str] = "train_step"
    epoch: int  # 1-based
    step: int  # 1-based, counted over the whole run
    total_steps: int
    loss: float
    ce: float
    kl: float | None = None


@dataclass(frozen=True)
class DevEvaluated(Event):
    kind: ClassVar[str] = "dev_evaluated"
    epoch: int
    accuracy: float  # percent
    best_accuracy: float
    best_epoch: int
    improved: bool


@dataclass(frozen=True)
class TestEvaluated(Event):
    kind: ClassVar[str] = "test_evaluated"
    language: str
    accuracy: float  # percent
    examples: int
    predictions: list[int] = field(default_factory=list)  # label index per test example
    gold: list[int] = field(default_factory=list)  # its gold label index
    rows: list[int] = field(default_factory=list)  # its row in the language's test file


@dataclass(frozen=True)
class RunFinished(Event):
    """The last event of a successful run; its dict is the run's result object."""

    kind: ClassVar[str] = "result"
    run_id: str
    method: str
    shots: int
    seed: int
    per_language: dict[str, float]
    average: float
    dev_accuracy: float
    best_epoch: int
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)
    collapse: dict[str, Any] | None = None  # collapse.Collapse.to_dict(); None: nothing tested


@dataclass(frozen=True)
class RunStopped(Event):
    """The last event of a run that did not finish (the errors.RunFailed exception is one
    cause); its wire name stays run_failed, as the contract says."""

    kind: ClassVar[str] = "run_failed"
    run_id: str
    error: str
    exit_code: int
    status: str  # failed, diverged, interrupted


@dataclass(frozen=True)
class RunSkipped(Event):
    """A grid left a run alone: another process is training it, or it finished meanwhile."""

    kind: ClassVar[str] = "run_skipped"
    run_id: str
    reason: str


EVENT_TYPES = {
    cls.kind: cls
    for cls in (
        RunStarted,
        TrainStep,
        DevEvaluated,
        TestEvaluated,
        RunFinished,
        RunStopped,
        RunSkipped,
    )
}


def event_from_dict(values: dict[str, Any]) -> Event:
    values = dict(values)
    values.pop("at", None)  # when the line was written, not part of the event
    return EVENT_TYPES[values.pop("event")](**values)

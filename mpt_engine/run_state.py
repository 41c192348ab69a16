"""A run's state, folded from its events once for every front end (the CLI's progress, the TUI's
screens, runs trained elsewhere and followed through the store), and the one vocabulary of
statuses that the store, the scheduler and the front ends share."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from mpt_engine.events import (
    DevEvaluated,
    Event,
    RunFinished,
    RunSkipped,
    RunStarted,
    RunStopped,
    TestEvaluated,
    TrainStep,
    event_from_dict,
)
from mpt_engine.tasks import Task, load_task, task_of


class RunStatus(StrEnum):
    NEW = "new"  # no folder yet
    QUEUED = "queued"  # waiting in this machine's queue
    PENDING = "pending"  # waiting in Slurm's queue
    RUNNING = "running"  # training (its lock is held)
    TESTING = "testing"  # evaluating the best state on the test sets
    FINISHED = "finished"  # a valid result.json
    FAILED = "failed"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    INCOMPLETE = "incomplete"  # a folder with neither result nor final event: killed
    SKIPPED = "skipped"  # left to the process that trains it
    CANCELLED = "cancelled"  # dropped from a queue before it started
    UNREADABLE = "unreadable"  # a result.json that cannot be used


UNFINISHED = frozenset({RunStatus.QUEUED, RunStatus.PENDING, RunStatus.RUNNING, RunStatus.TESTING})
# Never trained again: a run with a result.json, even one that cannot be used (it is kept).
DONE = frozenset({RunStatus.FINISHED, RunStatus.UNREADABLE})
# What a run folder can say of itself (RunStore.status), and a run's final event.
STORED = (
    RunStatus.FINISHED,
    RunStatus.RUNNING,
    RunStatus.FAILED,
    RunStatus.DIVERGED,
    RunStatus.INTERRUPTED,
    RunStatus.INCOMPLETE,
)


def _monotonic_at(stamp: Any) -> float | None:
    """When an event was written (its `at`, UTC) on this process's monotonic clock, so a run
    followed from its folder gets an honest ETA; None when the event has no time."""
    try:
        written = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return None
    return time.monotonic() - (datetime.now(UTC) - written).total_seconds()


@dataclass
class RunState:
    run_id: str
    status: RunStatus = RunStatus.QUEUED
    steps: list[TrainStep] = field(default_factory=list)
    dev: list[DevEvaluated] = field(default_factory=list)
    per_language: dict[str, float] = field(default_factory=dict)
    average: float | None = None
    total_steps: int = 0
    error: str = ""
    started: float | None = None
    result: dict[str, Any] | None = None  # the result object, once finished
    task: Task = field(default_factory=load_task)  # the run's, once it has started

    @classmethod
    def from_events(cls, run_id: str, events: list[dict[str, Any]], status: str) -> RunState:
        """The state a run folder's events.jsonl tells; its status is the store's (a run
        training anywhere holds its lock, so an incomplete one was killed or cancelled, and
        without a usable result.json a run is not finished, whatever its events say)."""
        state = cls(run_id)
        for values in events:
            try:
                state.update(event_from_dict(values))
            except (KeyError, TypeError):
                continue  # an event from another version of mpt: skip it
            if values.get("event") == RunStarted.kind:
                state.started = _monotonic_at(values.get("at"))
        state.status = RunStatus(status)
        if state.status is not RunStatus.FINISHED:
            state.average = None
        return state

    def update(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.task = task_of(event.config)
            self.status = RunStatus.RUNNING
            self.total_steps = event.epochs * event.steps_per_epoch
            self.started = time.monotonic()
        elif isinstance(event, TrainStep):
            self.steps.append(event)
        elif isinstance(event, DevEvaluated):
            self.dev.append(event)
        elif isinstance(event, TestEvaluated):
            self.status = RunStatus.TESTING
            self.per_language[event.language] = event.accuracy
        elif isinstance(event, RunFinished):
            self.status = RunStatus.FINISHED
            self.per_language = dict(event.per_language)
            self.average = event.average
            self.result = event.to_dict()
        elif isinstance(event, RunStopped):
            self.status = RunStatus(event.status)
            self.error = event.error
        elif isinstance(event, RunSkipped):
            self.status = RunStatus.SKIPPED
            self.error = event.reason

    @property
    def progress(self) -> float:
        """Fraction of training steps done."""
        return len(self.steps) / self.total_steps if self.total_steps else 0.0

    @property
    def eta_seconds(self) -> float | None:
        if not self.steps or self.started is None or self.status is not RunStatus.RUNNING:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed * (self.total_steps - len(self.steps)) / len(self.steps)

    @property
    def best_dev(self) -> float | None:
        return max((event.accuracy for event in self.dev), default=None)

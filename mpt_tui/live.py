"""What the app knows about one run while it trains or after: fed by engine events, whether they
come from a child process or from a run folder's events.jsonl."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from mpt_engine.events import (
    DevEvaluated,
    Event,
    RunFailed,
    RunFinished,
    RunSkipped,
    RunStarted,
    TestEvaluated,
    TrainStep,
    event_from_dict,
)


@dataclass
class LiveRun:
    run_id: str
    status: str = "queued"  # queued, running, testing, finished, failed, diverged, interrupted
    steps: list[TrainStep] = field(default_factory=list)
    dev: list[DevEvaluated] = field(default_factory=list)
    per_language: dict[str, float] = field(default_factory=dict)
    average: float | None = None
    total_steps: int = 0
    error: str = ""
    started: float | None = None

    @classmethod
    def from_events(cls, run_id: str, events: list[dict[str, Any]], status: str):
        run = cls(run_id)
        for values in events:
            try:
                run.update(event_from_dict(values))
            except (KeyError, TypeError):
                continue  # an event from another version of mpt: skip it
        # The store's status is the run's status (RunStore.status), whatever the events say: a
        # run training anywhere holds its lock, so an incomplete one was killed or cancelled.
        run.status = status
        if status != "finished":
            run.average = None
        return run

    def update(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.status = "running"
            self.total_steps = event.epochs * event.steps_per_epoch
            self.started = time.monotonic()
        elif isinstance(event, TrainStep):
            self.steps.append(event)
        elif isinstance(event, DevEvaluated):
            self.dev.append(event)
        elif isinstance(event, TestEvaluated):
            self.status = "testing"
            self.per_language[event.language] = event.accuracy
        elif isinstance(event, RunFinished):
            self.status = "finished"
            self.per_language = dict(event.per_language)
            self.average = event.average
        elif isinstance(event, RunFailed):
            self.status = event.status
            self.error = event.error
        elif isinstance(event, RunSkipped):
            self.status = "skipped"
            self.error = event.reason

    @property
    def progress(self) -> float:
        """Fraction of training steps done."""
        return len(self.steps) / self.total_steps if self.total_steps else 0.0

    @property
    def eta_seconds(self) -> float | None:
        if not self.steps or self.started is None or self.status != "running":
            return None
        elapsed = time.monotonic() - self.started
        return elapsed * (self.total_steps - len(self.steps)) / len(self.steps)

    @property
    def best_dev(self) -> float | None:
        return max((event.accuracy for event in self.dev), default=None)

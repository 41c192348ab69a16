"""Trackers as sinks of the event stream: a run's events also go to TensorBoard, MLflow or
Weights & Biases (`--log`), and `mpt results export --to` replays finished runs from the store.

Every tracker records the same things: the config as parameters, the run id and the git commit as
tags, the losses of each step (train/loss, train/ce, train/kl), the dev accuracy of each epoch
(dev/accuracy, logged at the epoch's last step, with dev/epoch), each test language's accuracy
(test/<lang>) and the average (test/average). What an event means for a tracker is decided once,
in `metrics`; a tracker only writes.

Trackers are fed from a thread of their own (`TrackerFeed`), so a slow tracker never slows the
run, and one that fails (tracker down, extra not installed) is dropped with one warning while
the run goes on. None of this is part of a run's identity.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from mpt_engine import paths
from mpt_engine.errors import InvalidInput
from mpt_engine.events import (
    DevEvaluated,
    Event,
    RunFinished,
    RunStopped,
    TestEvaluated,
    TrainStep,
    event_from_dict,
)

log = logging.getLogger(__name__)

EXTRAS = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}  # name -> module
FLUSH_SECONDS = 120  # how long the end of a run waits for its trackers to write


class Tracker(Protocol):
    def start(self, run_id: str, params: Mapping[str, Any], tags: Mapping[str, str]) -> None: ...
    def log(self, metrics: Mapping[str, float], step: int) -> None: ...
    def finish(self, status: str) -> None: ...


def parse_trackers(text: str | None, field: str = "log") -> tuple[str, ...]:
    """`tensorboard,mlflow` -> ("tensorboard", "mlflow"); InvalidInput for an unknown one,
    naming the option (`field`) that gave it."""
    names = tuple(dict.fromkeys(n.strip() for n in (text or "").split(",") if n.strip()))
    unknown = [name for name in names if name not in EXTRAS]
    if unknown:
        allowed = ", ".join(EXTRAS)
        raise InvalidInput(
            f"unknown tracker {unknown[0]!r} in {{{field}}}; choose from {allowed}",
            field=field,
            value=text,
            allowed=allowed,
        )
    return names


def missing_extras(names: Iterable[str]) -> list[str]:
    """The trackers whose library is not installed (each is `pip install 'mpt[NAME]'`)."""
    return [name for name in names if importlib.util.find_spec(EXTRAS[name]) is None]


def metrics(event: Event, step: int) -> tuple[dict[str, float], int] | None:
    """What an event says to a tracker, and at which training step (None: nothing)."""
    if isinstance(event, TrainStep):
        values = {"train/loss": event.loss, "train/ce": event.ce}
        if event.kl is not None:
            values["train/kl"] = event.kl
        return values, event.step
    if isinstance(event, DevEvaluated):
        return {"dev/accuracy": event.accuracy, "dev/epoch": float(event.epoch)}, step
    if isinstance(event, TestEvaluated):
        return {f"test/{event.language}": event.accuracy}, step
    if isinstance(event, RunFinished):
        return {"test/average": event.average, "dev/best": event.dev_accuracy}, step
    return None


def run_tags(run_id: str, record: Mapping[str, Any]) -> dict[str, str]:
    git = record.get("git") or {}
    tags = {"mpt.run_id": run_id}
    if git.get("commit"):
        tags["git.commit"] = git["commit"] + ("-dirty" if git.get("dirty") else "")
    return tags


class TrackerFeed:
    """A run's events to its trackers, from a thread of their own: `send` never waits, `close`
    waits at most FLUSH_SECONDS. A tracker that raises is dropped with one warning."""

    def __init__(
        self,
        names: Iterable[str],
        run_id: str,
        params: Mapping[str, Any],
        record: Mapping[str, Any],
        warn: Callable[[str], None] = log.warning,
    ) -> None:
        self.names, self.run_id, self.warn = tuple(names), run_id, warn
        self.params, self.tags = dict(params), run_tags(run_id, record)
        self.events: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._deliver, name="trackers", daemon=True)
        if self.names:
            self.thread.start()

    def send(self, event: Event) -> None:
        if self.names:
            self.events.put(event)

    def close(self) -> None:
        if not self.names:
            return
        self.events.put(None)
        self.thread.join(FLUSH_SECONDS)
        if self.thread.is_alive():
            self.warn(f"trackers still writing run {self.run_id} after {FLUSH_SECONDS} s; left")

    def _deliver(self) -> None:
        live: dict[str, Tracker] = {}
        for name in self.names:
            try:
                tracker = TRACKERS[name]()
                tracker.start(self.run_id, self.params, self.tags)
            except Exception as error:  # a tracker must never stop a run
                self._drop(name, error)
                continue
            live[name] = tracker
        step, status = 0, "interrupted"
        while (event := self.events.get()) is not None:
            if isinstance(event, RunFinished | RunStopped):
                status = "finished" if isinstance(event, RunFinished) else event.status
            found = metrics(event, step)
            if found is not None:
                values, step = found
                self._each(live, "log", values, step)
        self._each(live, "finish", status)

    def _each(self, live: dict[str, Tracker], method: str, *args: Any) -> None:
        for name, tracker in list(live.items()):
            try:
                getattr(tracker, method)(*args)
            except Exception as error:
                del live[name]
                self._drop(name, error)

    def _drop(self, name: str, error: Exception) -> None:
        if isinstance(error, ImportError):
            reason = f"not installed (pip install 'mpt[{name}]')"
        else:
            reason = f"{type(error).__name__}: {error}"
        self.warn(f"{name} stopped logging run {self.run_id}: {reason}")


def replay(
    names: Iterable[str],
    run_id: str,
    config: Mapping[str, Any],
    record: Mapping[str, Any],
    events: Iterable[Mapping[str, Any]],
    warn: Callable[[str], None] = log.warning,
) -> None:
    """A stored run's events (events.jsonl) into trackers, as if it were training now."""
    feed = TrackerFeed(names, run_id, config, record, warn)
    for values in events:
        try:
            feed.send(event_from_dict(values))
        except (KeyError, TypeError):
            continue  # an event from another version of mpt
    feed.close()


class TensorBoard:
    """Event files under $MPT_HOME/tensorboard/<run id> (`tensorboard --logdir` that folder):
    the run's latest attempt, rerun or replay. TensorBoard merges every event file of a folder,
    so the files of an earlier one are removed first (the store can replay them)."""

    def start(self, run_id: str, params: Mapping[str, Any], tags: Mapping[str, str]) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        folder = paths.tensorboard_dir() / run_id
        for earlier in folder.glob("events.out.tfevents.*"):
            earlier.unlink()
        self.writer = SummaryWriter(str(folder))
        shown = {key: _scalar(value) for key, value in params.items()}
        for summary in hparams(shown | dict(tags), {"test/average": 0.0}):
            self.writer.file_writer.add_summary(summary)

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)

    def finish(self, status: str) -> None:
        self.writer.add_text("status", status)
        self.writer.close()


class MLflow:
    """A run in the experiment MLFLOW_EXPERIMENT_NAME (default "mpt") of MLflow's tracking URI
    (MLFLOW_TRACKING_URI, else MLflow's default)."""

    def start(self, run_id: str, params: Mapping[str, Any], tags: Mapping[str, str]) -> None:
        from mlflow import MlflowClient
        from mlflow.entities import Param

        self.client = MlflowClient()
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "mpt")
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = (
            experiment.experiment_id if experiment else self.client.create_experiment(name)
        )
        all_tags = dict(tags) | {"mlflow.runName": run_id}
        if "git.commit" in tags:
            all_tags["mlflow.source.git.commit"] = tags["git.commit"]
        self.run = self.client.create_run(experiment_id, run_name=run_id, tags=all_tags).info.run_id
        values = [Param(key, str(value)) for key, value in params.items()]
        self.client.log_batch(self.run, params=values)

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        values = [Metric(key, value, now, step) for key, value in metrics.items()]
        self.client.log_batch(self.run, metrics=values)

    def finish(self, status: str) -> None:
        ended = {"finished": "FINISHED", "interrupted": "KILLED"}.get(status, "FAILED")
        self.client.set_terminated(self.run, ended)


class WandB:
    """A run in the W&B project WANDB_PROJECT (default "mpt"), under WANDB_DIR (default
    $MPT_HOME); WANDB_MODE=offline keeps it on disk for `wandb sync`."""

    def start(self, run_id: str, params: Mapping[str, Any], tags: Mapping[str, str]) -> None:
        import wandb

        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "mpt"),
            name=run_id,
            config=dict(params),
            tags=[f"{key}={value}"[:64] for key, value in tags.items()],
            dir=os.environ.get("WANDB_DIR") or str(paths.home()),
            reinit="create_new",
            settings=wandb.Settings(console="off"),  # stdout is ours (--json prints events)
        )

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self.run.log(dict(metrics), step=step)

    def finish(self, status: str) -> None:
        self.run.summary["status"] = status
        self.run.finish(exit_code=0 if status == "finished" else 1)


def _scalar(value: Any) -> Any:
    """TensorBoard's hyperparameters take numbers, strings and booleans; None is "none"."""
    return "none" if value is None else value


TRACKERS: dict[str, Callable[[], Tracker]] = {
    "tensorboard": TensorBoard,
    "mlflow": MLflow,
    "wandb": WandB,
}

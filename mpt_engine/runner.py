"""Run the engine and keep everything it says in the run store."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mpt_engine import record as records
from mpt_engine.config import RunConfig
from mpt_engine.data.files import with_data_digest
from mpt_engine.errors import Diverged, ExitCode, MptError, RunClaimed
from mpt_engine.events import Event, RunFinished, RunSkipped, RunStopped, TestEvaluated
from mpt_engine.run_state import RunStatus
from mpt_engine.store import RunFolder, RunStore
from mpt_engine.tasks import load_task
from mpt_engine.trackers import TrackerFeed
from mpt_engine.train import Trainer
from mpt_engine.warm import WarmCache


@dataclass(frozen=True)
class Execution:
    """How runs execute, not what they compute (so none of it is in a run's id): the device,
    whether the model is compiled, whether the best state is kept for `mpt predict`, and the
    trackers its events also go to (trackers.TRACKERS)."""

    device: str = "auto"
    compile: bool = False
    save_checkpoint: bool = False
    log: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Execution:
        values = json.loads(text)
        return cls(**values | {"log": tuple(values.get("log", ()))})


def execute(
    config: RunConfig,
    store: RunStore | None = None,
    execution: Execution | None = None,
    annotations: Mapping[str, Any] | None = None,
    warm: WarmCache | None = None,
    replaced: Callable[[Path], None] | None = None,
) -> Iterator[Event]:
    """Train and test one run, writing config, record, events and result as they happen
    (and, with `execution.save_checkpoint`, the best state before the result). `annotations`
    (such as a Slurm job id) go into the run's record; `warm` is what a process that trains
    several runs keeps between them.

    Data and model are loaded first, so bad input or a source that cannot be reached leaves
    nothing behind; then the run is claimed (RunClaimed when another process trains it or it
    finished meanwhile). With `replaced` (`mpt run --rerun`), a finished run is trained again
    instead: only now, claimed and ready to train, is its folder moved to the trash, and
    `replaced` is told where. Failures are recorded as a final run_failed event and re-raised.
    """
    store, execution = store or RunStore(), execution or Execution()
    config = with_data_digest(config.resolved())  # the run's id names the data it reads
    trainer = Trainer(config, execution.device, compile=execution.compile, warm=warm)
    trainer.setup()  # loads data and model: bad input or a missing source writes nothing
    with_data_digest(config)  # the files did not change while they were read
    config = trainer.config  # precision resolved for the device: the run's id
    with store.claim(config.run_id) as claimed:
        if not claimed:
            owner = store.owner(config.run_id) or "another process"
            raise RunClaimed(f"run {config.run_id} is being trained by {owner}")
        if replaced is not None and os.path.lexists(store.folder(config.run_id) / "result.json"):
            replaced(store.trash(config.run_id))  # readable or not: it is trained again
        elif store.result(config.run_id) is not None:
            raise RunClaimed(f"run {config.run_id} finished meanwhile")
        yield from _train(trainer, store, execution, annotations or {})


def _train(
    trainer: Trainer, store: RunStore, execution: Execution, annotations: Mapping[str, Any]
) -> Iterator[Event]:
    config = trainer.config
    record = records.collect()
    record.update(annotations, **trainer.record())
    run = RunFolder(store.home, config.run_id)
    predictions: dict[str, dict[str, list[int]]] = {}
    feed = TrackerFeed(execution.log, config.run_id, config.to_dict(), record)
    try:
        store.begin(config.run_id, config.to_dict(), record)
        for event in trainer.events():
            if isinstance(event, TestEvaluated):
                predictions[event.language] = {
                    "example": event.rows,  # the row of the language's test file
                    "gold": event.gold,
                    "predicted": event.predictions,  # -1: PCT's argmax is no label word
                }
            if isinstance(event, RunFinished):  # result.json first: the event follows a result
                if execution.save_checkpoint:
                    trainer.save_checkpoint(run.folder / "checkpoint")
                record["finished_at"] = records.now()
                run.write_record(record)
                result = event.to_dict()
                del result["event"]
                labels = list(load_task(config.task).labels)  # label indices name these
                run.finish(result, {"labels": labels, "per_language": predictions})
            run.append_event(event.to_json())
            feed.send(event)
            yield event
    except GeneratorExit:  # the caller stopped consuming (Ctrl-C, SIGTERM): not finished
        _record_stop(run, config.run_id, KeyboardInterrupt(), feed)
        raise
    except BaseException as error:
        _record_stop(run, config.run_id, error, feed)
        raise
    finally:
        feed.close()


def _record_stop(run: RunFolder, run_id: str, error: BaseException, feed: TrackerFeed) -> None:
    """The event saying why a run stopped; none once its result is stored (an interrupt that
    lands just after it does not undo a finished run), nor when its folder was never begun."""
    if isinstance(error, RunClaimed) or os.path.lexists(run.folder / "result.json"):
        return
    if not os.path.lexists(run.folder / "config.json"):
        return
    stopped = failure(run_id, error)
    feed.send(stopped)
    with contextlib.suppress(MptError):  # the store itself may be what failed
        run.append_event(stopped.to_json())


def finished_result(store: RunStore, run_id: str) -> dict[str, Any] | None:
    """The stored result of a run an interrupt stopped, if it had finished just before."""
    with contextlib.suppress(MptError):
        return store.result(run_id)
    return None


def failure(run_id: str, error: BaseException) -> RunStopped | RunSkipped:
    """The event that records why a run stopped (or was left to another process)."""
    if isinstance(error, RunClaimed):
        return RunSkipped(run_id, str(error))
    if isinstance(error, KeyboardInterrupt):
        code, status = ExitCode.INTERRUPTED, RunStatus.INTERRUPTED
    elif isinstance(error, MptError):
        diverged = isinstance(error, Diverged)
        code, status = error.exit_code, RunStatus.DIVERGED if diverged else RunStatus.FAILED
    else:
        code, status = ExitCode.RUN_FAILED, RunStatus.FAILED
    if isinstance(error, KeyboardInterrupt):
        message = "interrupted"
    elif isinstance(error, MptError):
        message = str(error)
    else:
        message = f"{type(error).__name__}: {error}"
    return RunStopped(run_id, message, int(code), status)

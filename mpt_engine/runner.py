"""Run the engine and keep everything it says in the run store."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from mpt_engine import checkpoint
from mpt_engine import record as records
from mpt_engine.config import RunConfig
from mpt_engine.errors import Diverged, ExitCode, MptError, RunClaimed
from mpt_engine.events import Event, RunFailed, RunFinished, RunSkipped
from mpt_engine.store import RunStore, StoreWriteFailed
from mpt_engine.train import Trainer


def execute(
    config: RunConfig,
    store: RunStore | None = None,
    device: str = "auto",
    save_checkpoint: bool = False,
    compile: bool = False,
    annotations: Mapping[str, Any] | None = None,
) -> Iterator[Event]:
    """Train and test one run, writing config, record, events and result as they happen
    (and, with `save_checkpoint`, the best state before the result). `annotations` (such as a
    Slurm job id) go into the run's record.

    Data and model are loaded first, so bad input or a source that cannot be reached leaves
    nothing behind; then the run is claimed (RunClaimed when another process trains it or it
    finished meanwhile). Failures are recorded as a final run_failed event and re-raised.
    """
    store = store or RunStore()
    trainer = Trainer(config, device, compile=compile)
    trainer.setup()  # loads data and model: bad input or a missing source writes nothing
    config = trainer.config  # precision resolved for the device: the run's id
    with store.claim(config.run_id) as claimed:
        if not claimed:
            owner = store.owner(config.run_id) or "another process"
            raise RunClaimed(f"run {config.run_id} is being trained by {owner}")
        if store.result(config.run_id) is not None:
            raise RunClaimed(f"run {config.run_id} finished meanwhile")
        yield from _train(trainer, store, save_checkpoint, annotations or {})


def _train(
    trainer: Trainer, store: RunStore, save_checkpoint: bool, annotations: Mapping[str, Any]
) -> Iterator[Event]:
    config = trainer.config
    record = records.collect()
    record.update(annotations, **trainer.record())
    run = store.begin(config.run_id, config.to_dict(), record)
    try:
        for event in trainer.events():
            run.append_event(event.to_json())
            if isinstance(event, RunFinished):
                if save_checkpoint:
                    checkpoint.save(trainer.method, trainer.tokenizer, run.folder / "checkpoint")
                record["finished_at"] = records.now()
                run.write_record(record)
                result = event.to_dict()
                del result["event"]
                run.finish(result, trainer.predictions)
            yield event
    except GeneratorExit:  # the caller stopped consuming (Ctrl-C, SIGTERM): not finished
        with contextlib.suppress(StoreWriteFailed):
            run.append_event(failure(config.run_id, KeyboardInterrupt()).to_json())
        raise
    except BaseException as error:
        with contextlib.suppress(StoreWriteFailed):  # the store itself may be what failed
            run.append_event(failure(config.run_id, error).to_json())
        raise


def failure(run_id: str, error: BaseException) -> RunFailed | RunSkipped:
    """The event that records why a run stopped (or was left to another process)."""
    if isinstance(error, RunClaimed):
        return RunSkipped(run_id, str(error))
    if isinstance(error, KeyboardInterrupt):
        code, status = ExitCode.INTERRUPTED, "interrupted"
    elif isinstance(error, MptError):
        code, status = error.exit_code, "diverged" if isinstance(error, Diverged) else "failed"
    else:
        code, status = ExitCode.RUN_FAILED, "failed"
    if isinstance(error, KeyboardInterrupt):
        message = "interrupted"
    elif isinstance(error, MptError):
        message = str(error)
    else:
        message = f"{type(error).__name__}: {error}"
    return RunFailed(run_id, message, int(code), status)

"""Run the engine and keep everything it says in the run store."""

from __future__ import annotations

from collections.abc import Iterator

from mpt_engine import record as records
from mpt_engine.config import RunConfig
from mpt_engine.errors import Diverged, ExitCode, MptError
from mpt_engine.events import Event, RunFailed, RunFinished
from mpt_engine.store import RunStore
from mpt_engine.train import Trainer


def execute(
    config: RunConfig, store: RunStore | None = None, device: str = "auto"
) -> Iterator[Event]:
    """Train and test one run, writing config, record, events and result as they happen.

    Data and model are loaded before the run folder is created, so a source that cannot be
    reached leaves nothing behind. Failures are recorded as a final run_failed event and re-raised.
    """
    store = store or RunStore()
    config = config.resolved()
    record = records.collect()
    trainer = Trainer(config, device)
    trainer.setup()
    record.update(
        device=records.device_name(trainer.device), data_fingerprints=trainer.data.fingerprints
    )
    run = store.begin(config.run_id, config.to_dict(), record)
    try:
        for event in trainer.events():
            run.append_event(event.to_json())
            if isinstance(event, RunFinished):
                record["finished_at"] = records.now()
                run.write_record(record)
                result = event.to_dict()
                del result["event"]
                run.finish(result, trainer.predictions)
            yield event
    except GeneratorExit:
        raise
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt):
            code, status = ExitCode.INTERRUPTED, "interrupted"
        elif isinstance(error, MptError):
            code, status = error.exit_code, "diverged" if isinstance(error, Diverged) else "failed"
        else:
            code, status = ExitCode.RUN_FAILED, "failed"
        message = str(error) or type(error).__name__
        run.append_event(RunFailed(config.run_id, message, int(code), status).to_json())
        raise

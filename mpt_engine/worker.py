"""`python -m mpt_engine.worker --config JSON`: one run in a child process, NDJSON events on
stdout. The grid's GPU pool and the TUI start runs this way, so a crash or an out-of-memory
error in training never takes the caller down."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys

from mpt_engine.config import RunConfig
from mpt_engine.errors import STOP_SIGNALS, ExitCode, MptError
from mpt_engine.launch import WARNING
from mpt_engine.runner import Execution, execute, failure, finished_result
from mpt_engine.store import RunStore


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    for stop in STOP_SIGNALS:
        signal.signal(stop, _interrupt)
    warnings = logging.StreamHandler(sys.stderr)  # the parent says them again (launch.WARNING)
    warnings.setFormatter(logging.Formatter(WARNING + "%(message)s"))
    warnings.setLevel(logging.WARNING)
    logging.getLogger("mpt_engine").addHandler(warnings)
    parser = argparse.ArgumentParser(prog="python -m mpt_engine.worker")
    parser.add_argument("--config", required=True, help="the run's config as JSON")
    parser.add_argument("--execution", default="{}", help="runner.Execution as JSON")
    args = parser.parse_args(argv)
    try:
        config = RunConfig.from_dict(json.loads(args.config))
        execution = Execution.from_json(args.execution)
    except (MptError, json.JSONDecodeError, TypeError) as error:
        print(f"error: bad --config or --execution: {error}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        events = execute(config, execution=execution)
        with contextlib.closing(events):  # interrupted in print(): still recorded
            for event in events:
                print(event.to_json(), flush=True)
    except (Exception, KeyboardInterrupt) as error:
        finished = finished_result(RunStore(), config.run_id)
        if isinstance(error, KeyboardInterrupt) and finished is not None:  # stopped after it
            print(json.dumps({"event": "result", **finished}), flush=True)
            return ExitCode.OK
        failed = failure(config.run_id, error)
        print(failed.to_json(), flush=True)
        return failed.exit_code
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())

"""`python -m mpt_engine.worker`: a long-lived worker of the grid's pool (mpt grid, the TUI).
It reads one run's config per line on stdin and trains run after run until stdin closes, writing
NDJSON events on stdout; each run ends with its final event (result, run_failed or
run_skipped). Imports, tokenizers and pretrained weights stay loaded between runs
(warm.WarmCache); a crash or an out-of-memory error in training never takes the caller down.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys

from mpt_engine.config import RunConfig
from mpt_engine.errors import STOP_SIGNALS, ExitCode
from mpt_engine.events import RunStopped
from mpt_engine.launch import WARNING
from mpt_engine.runner import Execution, execute, failure, finished_result
from mpt_engine.store import RunStore
from mpt_engine.warm import WarmCache


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
    parser.add_argument("--execution", default="{}", help="runner.Execution as JSON")
    try:
        execution = Execution.from_json(parser.parse_args(argv).execution)
    except (json.JSONDecodeError, TypeError) as error:
        print(f"error: bad --execution: {error}", file=sys.stderr)
        return ExitCode.USAGE
    warm = WarmCache()
    try:
        for line in sys.stdin:
            if line.strip():
                code = run(RunConfig.from_dict(json.loads(line)), execution, warm)
                if code == ExitCode.INTERRUPTED:  # asked to stop: queued runs are not begun
                    return code
    except KeyboardInterrupt:  # between runs
        return ExitCode.INTERRUPTED
    return ExitCode.OK


def run(config: RunConfig, execution: Execution, warm: WarmCache | None = None) -> int:
    """One run, its events on stdout, the last one final."""
    try:
        events = execute(config, execution=execution, warm=warm)
        with contextlib.closing(events):  # interrupted in print(): still recorded
            for event in events:
                print(event.to_json(), flush=True)
    except (Exception, KeyboardInterrupt) as error:
        finished = finished_result(RunStore(), config.run_id)
        if isinstance(error, KeyboardInterrupt) and finished is not None:  # stopped after it
            print(json.dumps({"event": "result", **finished}), flush=True)
            return ExitCode.OK
        ended = failure(config.run_id, error)  # run_failed, or run_skipped (another trains it)
        print(ended.to_json(), flush=True)
        return ended.exit_code if isinstance(ended, RunStopped) else ExitCode.OK
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())

"""Run a grid on this machine: one run after another in this process, or one child process per
GPU slot (CUDA_VISIBLE_DEVICES set per child). A failed run is reported and the grid goes on."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mpt_engine.config import Precision, RunConfig
from mpt_engine.device import auto_precision, check_precision
from mpt_engine.errors import ExitCode, InvalidInput
from mpt_engine.events import Event, RunFinished, RunSkipped, RunStopped, event_from_dict
from mpt_engine.grid import expand
from mpt_engine.run_state import RunStatus
from mpt_engine.runner import Execution, execute, failure
from mpt_engine.store import BadRun, RunStore, pending_runs

log = logging.getLogger(__name__)
WARNING = "mpt-warning: "  # how a worker writes the engine's warnings on its stderr


def gpu_slots(text: str) -> list[str]:
    """`0,1` -> ["0", "1"]: the GPUs a grid on this machine trains on, one run on each at a
    time (none: one run at a time, on the run's device)."""
    slots = [slot.strip() for slot in text.split(",")] if text.strip() else []
    if not all(slot.isdigit() for slot in slots):
        allowed = "GPU indices like 0,1"
        raise InvalidInput(f"{{gpus}} {text!r}: expected {allowed}", field="gpus", allowed=allowed)
    return slots


def missing_gpus(slots: Sequence[str]) -> list[str]:
    """The GPU slots naming a GPU this machine does not have (their children run on the CPU)."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [slot for slot in slots if int(slot) >= count]


def local_device(device: str = "auto", slots: Sequence[str] = ()) -> str:
    """The device the runs of a grid on this machine train on: `device`, or with GPU slots the
    slots' GPU (each child sees its own; the slots are taken to be alike), or the CPU when
    none of the slots names a GPU here."""
    if not slots:
        return device
    present = [slot for slot in slots if slot not in missing_gpus(slots)]
    return f"cuda:{present[0]}" if present else "cpu"


def local_precision(device: str = "auto", slots: Sequence[str] = ()) -> Precision:
    """What precision auto means for the runs of a grid on this machine."""
    return auto_precision(local_device(device, slots))


def local_grid(
    preset: str | None,
    lists: Mapping[str, Sequence[Any]],
    device: str = "auto",
    slots: Sequence[str] = (),
    environ: Mapping[str, str] = os.environ,
) -> list[RunConfig]:
    """The runs of a grid to train on this machine, their precision resolved for the device
    they train on (so their ids are those of the runs they store) and checked there."""
    target = local_device(device, slots)
    configs = expand(preset, lists, environ, auto_precision(target))
    for precision in {config.precision for config in configs}:
        check_precision(precision, target)
    return configs


def unusable_runs(configs: Sequence[RunConfig], store: RunStore) -> list[str]:
    """Why each run whose folder holds a result.json that cannot be used is left alone (such a
    folder is never overwritten, and pending_runs does not count it)."""
    reasons = []
    for config in configs:
        try:
            store.result(config.run_id)
        except BadRun as error:
            reasons.append(f"skipped {error}")
    return reasons


def run_grid(
    configs: Sequence[RunConfig],
    store: RunStore,
    execution: Execution | None = None,
    gpus: Sequence[str] = (),
) -> Iterator[tuple[str, Event]]:
    """(run id, event) for every event of every run still to do; finished runs are skipped.
    The configs come from local_grid (their precision resolved for this machine). With `gpus`,
    one child per GPU slot, each on the GPU it is given (execution.device does not apply)."""
    todo, execution = pending_runs(configs, store.status), execution or Execution()
    if gpus:
        on_its_gpu = dataclasses.replace(execution, device="auto")
        yield from ProcessPool(todo, store, gpus, on_its_gpu).updates()
        return
    for config in todo:
        try:
            for event in execute(config, store, execution):
                yield config.run_id, event
        except Exception as error:  # recorded by execute; the grid goes on
            yield config.run_id, failure(config.run_id, error)  # run_failed or run_skipped


class ProcessPool:
    """Runs as child processes, at most one per slot. A slot is a GPU index (the child sees
    only that GPU) or None (the child sees the machine as it is). `cancel()` may be called from
    another thread: waiting runs are dropped and running children are asked to stop (SIGTERM),
    which records them as interrupted."""

    def __init__(
        self,
        configs: Sequence[RunConfig],
        store: RunStore,
        slots: Sequence[str | None] = (None,),
        execution: Execution | None = None,
    ):
        self.waiting = deque(configs)
        self.store, self.slots = store, list(slots)
        self.execution = execution or Execution()
        self.active: dict[int, _Child] = {}
        self.lines: queue.Queue[tuple[int, str | None]] = queue.Queue()

    def _start(self, index: int) -> None:
        threads = threads_per_child(len(self.slots))
        child = _Child(
            self.waiting.popleft(), self.slots[index], self.store, self.execution, threads
        )
        self.active[index] = child
        threading.Thread(target=child.pump, args=(index, self.lines), daemon=True).start()

    def updates(self) -> Iterator[tuple[str, Event]]:
        try:
            for index in range(len(self.slots)):
                if self.waiting:
                    self._start(index)
            while self.active:
                index, line = self.lines.get()
                child = self.active[index]
                if line is not None:
                    event = event_from_dict(json.loads(line))
                    child.ended |= isinstance(event, RunFinished | RunStopped | RunSkipped)
                    yield child.config.run_id, event
                    continue
                ended_early = child.finish()
                if ended_early is not None:
                    yield child.config.run_id, ended_early
                del self.active[index]
                if self.waiting:
                    self._start(index)
        finally:
            self.cancel()

    def cancel(self) -> None:
        self.waiting.clear()
        for child in list(self.active.values()):
            child.stop()


def threads_per_child(children: int) -> int | None:
    """The CPU threads each of several children may use, so that together they do not
    oversubscribe the cores (measured 2.3-8x slower on shared CPUs); None for one child."""
    if children <= 1:
        return None
    return max(1, (os.cpu_count() or 1) // children)


class _Child:
    """One worker process (python -m mpt_engine.worker) on one GPU slot."""

    def __init__(
        self,
        config: RunConfig,
        slot: str | None,
        store: RunStore,
        execution: Execution,
        threads: int | None = None,
    ):
        self.config, self.ended = config, False
        env = dict(os.environ, MPT_HOME=str(store.root.parent))
        if threads is not None and "OMP_NUM_THREADS" not in os.environ:  # the user's wins
            env["OMP_NUM_THREADS"] = str(threads)
        if slot is not None:
            env["CUDA_VISIBLE_DEVICES"] = slot
        command = [sys.executable, "-m", "mpt_engine.worker", "--config", config.to_json()]
        command += ["--execution", execution.to_json()]
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in finish)
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=env
        )

    def pump(self, index: int, lines: queue.Queue) -> None:
        for line in self.process.stdout:
            if line.strip():
                lines.put((index, line))
        lines.put((index, None))

    def finish(self) -> RunStopped | None:
        """Wait for the exit; a child that died without a final event gets one. The engine's
        warnings the child wrote (a tracker that stopped) are said again here."""
        code = self.process.wait()
        self.stderr.seek(0)
        lines = self.stderr.read().decode(errors="replace").strip().splitlines()
        self.stderr.close()
        for line in lines:
            if line.startswith(WARNING):
                log.warning(line.removeprefix(WARNING))
        tail = [line for line in lines if not line.startswith(WARNING)][-1:]
        if self.ended:
            return None
        reason = tail[0] if tail else f"worker exited with code {code}"
        return RunStopped(self.config.run_id, reason, int(ExitCode.RUN_FAILED), RunStatus.FAILED)

    def stop(self) -> None:
        """Ask the child to stop (it records itself as interrupted); kill it if it hangs."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

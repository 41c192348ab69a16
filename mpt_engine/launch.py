"""Run a grid on this machine: one run after another in this process, or long-lived worker
processes, several per GPU slot (CUDA_VISIBLE_DEVICES set per worker). A failed run is reported
and the grid goes on."""

from __future__ import annotations

import contextlib
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
from mpt_engine.warm import WarmCache

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
    runs_per_gpu: int = 1,
) -> Iterator[tuple[str, Event]]:
    """(run id, event) for every event of every run still to do; finished runs are skipped.
    The configs come from local_grid (their precision resolved for this machine). With `gpus`,
    `runs_per_gpu` long-lived workers per GPU slot, each on the GPU it is given
    (execution.device does not apply); without, one run after another in this process, or
    `runs_per_gpu` workers sharing this machine."""
    todo, execution = pending_runs(configs, store.status), execution or Execution()
    if gpus:
        on_its_gpu = dataclasses.replace(execution, device="auto")
        yield from ProcessPool(todo, store, gpus, on_its_gpu, runs_per_gpu).updates()
        return
    if runs_per_gpu > 1:
        yield from ProcessPool(todo, store, [None], execution, runs_per_gpu).updates()
        return
    warm = WarmCache()
    for config in todo:
        try:
            for event in execute(config, store, execution, warm=warm):
                yield config.run_id, event
        except Exception as error:  # recorded by execute; the grid goes on
            yield config.run_id, failure(config.run_id, error)  # run_failed or run_skipped


def runs_per_slot(asked: int | None, slots: Sequence[str]) -> int:
    """The worker processes per GPU slot (without GPUs: sharing the CPU): as asked (at least
    1), or by default_runs_per_gpu."""
    if asked is None:
        return default_runs_per_gpu(slots)
    if asked < 1:
        raise InvalidInput(
            f"{{runs_per_gpu}} {asked}: expected 1 or more",
            field="runs_per_gpu",
            value=asked,
            allowed="1 or more",
        )
    return asked


def default_runs_per_gpu(slots: Sequence[str]) -> int:
    """Runs sharing one GPU when none is asked for: one per 24 GiB free on the first slot's GPU,
    at most 4 (an XLM-R base run with AdamW holds about 5 GiB of weights and optimizer state,
    the rest is room for activations); 1 without a GPU."""
    present = [slot for slot in slots if slot not in missing_gpus(slots)]
    if not present:
        return 1
    import torch

    free, _ = torch.cuda.mem_get_info(int(present[0]))
    return max(1, min(4, free // (24 * 2**30)))


FINAL = (RunFinished, RunStopped, RunSkipped)  # a run's last event


class ProcessPool:
    """Runs in long-lived worker processes, `per_slot` of them on each slot, each taking the
    next waiting run when its run ends. A slot is a GPU index (its workers see only that GPU)
    or None (they see the machine as it is). A worker that dies is replaced. `cancel()` may be
    called from another thread: waiting runs are dropped and the workers are asked to stop
    (SIGTERM), which records their runs as interrupted."""

    def __init__(
        self,
        configs: Sequence[RunConfig],
        store: RunStore,
        slots: Sequence[str | None] = (None,),
        execution: Execution | None = None,
        per_slot: int = 1,
    ):
        self.waiting = deque(configs)
        self.store = store
        self.slots = [slot for slot in slots for _ in range(per_slot)]
        self.execution = execution or Execution()
        self.workers: dict[int, _Worker] = {}
        self.lines: queue.Queue[tuple[int, str | None]] = queue.Queue()

    def _start(self, index: int) -> None:
        threads = threads_per_child(len(self.slots))
        worker = _Worker(self.slots[index], self.store, self.execution, threads)
        self.workers[index] = worker
        threading.Thread(target=worker.pump, args=(index, self.lines), daemon=True).start()
        self._next(worker)

    def _next(self, worker: _Worker) -> None:
        """The worker's next run, or the end of its input when none is left."""
        if self.waiting:
            worker.assign(self.waiting.popleft())
        else:
            worker.close()

    def updates(self) -> Iterator[tuple[str, Event]]:
        try:
            for index in range(len(self.slots)):
                if self.waiting:
                    self._start(index)
            while self.workers:
                index, line = self.lines.get()
                worker = self.workers[index]
                if line is not None:
                    event = _event(line)
                    if event is None or worker.config is None:  # not an event of a run
                        continue
                    run_id = worker.config.run_id
                    if isinstance(event, FINAL):
                        self._next(worker)
                    yield run_id, event
                    continue
                ended_early = worker.finish()
                if ended_early is not None:
                    yield ended_early.run_id, ended_early
                del self.workers[index]
                if self.waiting:
                    self._start(index)  # a fresh worker in place of one that died
        finally:
            self.cancel()

    def cancel(self) -> None:
        self.waiting.clear()
        for worker in list(self.workers.values()):
            worker.stop()


def _event(line: str) -> Event | None:
    """A worker's line as an event; None (with a warning) for anything else a library printed
    on its stdout."""
    try:
        return event_from_dict(json.loads(line))
    except (ValueError, KeyError, TypeError):
        log.warning("a worker printed a line that is not an event: %s", line.strip()[:200])
        return None


def threads_per_child(children: int) -> int | None:
    """The CPU threads each of several children may use, so that together they do not
    oversubscribe the cores (measured 2.3-8x slower on shared CPUs); None for one child."""
    if children <= 1:
        return None
    return max(1, (os.cpu_count() or 1) // children)


class _Worker:
    """One worker process (python -m mpt_engine.worker) on one slot; `config` is the run it is
    training (None between runs)."""

    def __init__(
        self, slot: str | None, store: RunStore, execution: Execution, threads: int | None = None
    ):
        self.config: RunConfig | None = None
        env = dict(os.environ, MPT_HOME=str(store.root.parent))
        if threads is not None and "OMP_NUM_THREADS" not in os.environ:  # the user's wins
            env["OMP_NUM_THREADS"] = str(threads)
        if slot is not None:
            env["CUDA_VISIBLE_DEVICES"] = slot
        command = [sys.executable, "-m", "mpt_engine.worker", "--execution", execution.to_json()]
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in finish)
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=env,
        )

    def assign(self, config: RunConfig) -> None:
        self.config = config
        with contextlib.suppress(OSError):  # it died: finish() reports the run
            self.process.stdin.write(config.to_json() + "\n")
            self.process.stdin.flush()

    def close(self) -> None:
        """No more runs: the worker exits once its input ends."""
        self.config = None
        with contextlib.suppress(OSError):
            self.process.stdin.close()

    def pump(self, index: int, lines: queue.Queue) -> None:
        for line in self.process.stdout:
            if line.strip():
                lines.put((index, line))
        lines.put((index, None))

    def finish(self) -> RunStopped | None:
        """Wait for the exit; the run it was training when it died gets a final event. The
        engine's warnings the worker wrote (a tracker that stopped) are said again here."""
        code = self.process.wait()
        self.stderr.seek(0)
        lines = self.stderr.read().decode(errors="replace").strip().splitlines()
        self.stderr.close()
        for line in lines:
            if line.startswith(WARNING):
                log.warning(line.removeprefix(WARNING))
        tail = [line for line in lines if not line.startswith(WARNING)][-1:]
        if self.config is None:
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

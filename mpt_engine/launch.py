"""Run a grid on this machine: one run after another in this process, or one child process per
GPU slot (CUDA_VISIBLE_DEVICES set per child). A failed run is reported and the grid goes on."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Iterator, Sequence

from mpt_engine.config import RunConfig
from mpt_engine.errors import ExitCode
from mpt_engine.events import Event, RunFailed, RunFinished, event_from_dict
from mpt_engine.runner import execute, failure
from mpt_engine.store import RunStore


def pending_runs(configs: Sequence[RunConfig], store: RunStore) -> list[RunConfig]:
    return [config for config in configs if store.result(config.run_id) is None]


def run_grid(
    configs: Sequence[RunConfig],
    store: RunStore,
    device: str = "auto",
    gpus: Sequence[str] = (),
    save_checkpoint: bool = False,
) -> Iterator[tuple[str, Event]]:
    """(run id, event) for every event of every run still to do; finished runs are skipped."""
    todo = pending_runs(configs, store)
    if gpus:
        yield from _gpu_pool(todo, store, gpus, save_checkpoint)
        return
    for config in todo:
        try:
            for event in execute(config, store, device, save_checkpoint):
                yield config.run_id, event
        except Exception as error:  # recorded by execute; the grid goes on
            yield config.run_id, failure(config.run_id, error)


def _gpu_pool(
    todo: Sequence[RunConfig], store: RunStore, gpus: Sequence[str], save_checkpoint: bool
) -> Iterator[tuple[str, Event]]:
    lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
    waiting = deque(todo)
    active: dict[str, _Child] = {}

    def start(slot: str) -> None:
        child = _Child(waiting.popleft(), slot, store, save_checkpoint)
        active[slot] = child
        threading.Thread(target=child.pump, args=(lines,), daemon=True).start()

    try:
        for slot in gpus:
            if waiting:
                start(slot)
        while active:
            slot, line = lines.get()
            child = active[slot]
            if line is not None:
                event = event_from_dict(json.loads(line))
                child.ended |= isinstance(event, RunFinished | RunFailed)
                yield child.config.run_id, event
                continue
            ended_early = child.finish()
            if ended_early is not None:
                yield child.config.run_id, ended_early
            del active[slot]
            if waiting:
                start(slot)
    finally:
        for child in active.values():
            child.stop()


class _Child:
    """One worker process (python -m mpt_engine.worker) on one GPU slot."""

    def __init__(self, config: RunConfig, slot: str, store: RunStore, save_checkpoint: bool):
        self.config, self.slot, self.ended = config, slot, False
        env = dict(os.environ, CUDA_VISIBLE_DEVICES=slot, MPT_HOME=str(store.root.parent))
        command = [sys.executable, "-m", "mpt_engine.worker", "--config", config.to_json()]
        if save_checkpoint:
            command.append("--save-checkpoint")
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in finish)
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=env
        )

    def pump(self, lines: queue.Queue) -> None:
        for line in self.process.stdout:
            if line.strip():
                lines.put((self.slot, line))
        lines.put((self.slot, None))

    def finish(self) -> RunFailed | None:
        """Wait for the exit; a child that died without a final event gets one."""
        code = self.process.wait()
        self.stderr.seek(0)
        tail = self.stderr.read().decode(errors="replace").strip().splitlines()[-1:]
        self.stderr.close()
        if self.ended:
            return None
        reason = tail[0] if tail else f"worker exited with code {code}"
        return RunFailed(self.config.run_id, reason, int(ExitCode.RUN_FAILED), "failed")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()

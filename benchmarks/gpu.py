"""What a lent GPU answers in one device call (benchmarks/device.sh runs each stage on its
own, with its own time limit):

- `busy`: how busy the GPU is during an MPT step at XLM-R base's shape: the union of the CUDA
  kernels' and copies' intervals over the wall time of 3 profiled steps; their trace lands in
  $OUT (gzipped, for chrome://tracing or Perfetto);
- `compile`: what `--compile` buys: the step time with torch.compile (CUDA graphs on a GPU,
  batches padded to multiples of 32 tokens as the trainer pads them), and the seconds its
  warm-up took;
- `sweep`: what several runs on one GPU buy (`mpt grid --runs-per-gpu N`): N processes
  training MPT steps at once, their steps per second together.

    python benchmarks/gpu.py busy|compile|sweep [--shape xlmr-base] [--steps 20] [--workers 4]

Each stage prints its figures as one JSON line the moment they are measured (and appends it
to $OUT/figures.jsonl). On a CPU it runs too (a rehearsal: small --steps), without the busy
fraction.
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench import (
    MPT_CONFIG,
    SHAPES,
    alignment_pairs,
    bench_tokenizer,
    data_root,
    emit,
    mpt_method,
)
from mpt_engine.data.examples import TaskData
from mpt_engine.data.local import LocalSource
from mpt_engine.train import (
    BUCKET,
    LossLog,
    build_optimizer,
    compile_model,
    resolve_device,
    training_step,
)


class Steps:
    """MPT training steps as the trainer takes them (train.training_step, losses read in
    groups), on a randomly initialised model of the shape."""

    def __init__(self, shape: str, device: torch.device, compiled: bool = False):
        source = LocalSource(data_root())
        self.device = device
        self.method = mpt_method(shape, bench_tokenizer(source), source, device)
        self.compiled = compiled
        if compiled:
            compile_model(self.method, device)
        train = source.paper_split("train", 8)
        self.method.prepare(TaskData(train, [], {}, alignment_pairs(source)))
        self.optimizer = build_optimizer(self.method, MPT_CONFIG, device)
        self.generator = torch.Generator().manual_seed(0)
        self.bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        self.method.model.train()

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def run(self, count: int) -> float:
        """Seconds for `count` steps, the device drained at both ends."""
        synchronize(self.device)
        started = time.perf_counter()
        log = LossLog(1, count)
        for step in range(count):
            batch = next(self.method.training_batches(self.generator))
            if self.compiled:
                batch = batch.bucketed(BUCKET, self.method.pad_id, MPT_CONFIG.max_length)
            batch = batch.to(self.device)
            log.add(step, training_step(self.method, self.optimizer, batch, 1.0, self.autocast))
        list(log.report())
        synchronize(self.device)
        return time.perf_counter() - started


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def busy_fraction(steps: Steps, count: int, out: Path) -> dict:
    """The device's busy time over the wall time of `count` profiled steps (after a warm-up):
    the union of the CUDA rows' intervals (kernels, copies, sets), each counted once."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    steps.run(3)
    gpu = steps.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    with profile(activities=activities) as trace:
        seconds = steps.run(count)
    exported = out / "mpt-step-trace.json"
    trace.export_chrome_trace(str(exported))
    with exported.open("rb") as plain, gzip.open(f"{exported}.gz", "wb") as packed:
        shutil.copyfileobj(plain, packed)
    exported.unlink()
    device_rows = [
        (event.time_range.start, event.time_range.end)
        for event in trace.events()
        if event.device_type == DeviceType.CUDA
    ]
    return {
        "step_ms": round(1000 * seconds / count, 2),
        "gpu_busy_fraction": round(covered(device_rows) / (seconds * 1e6), 3) if gpu else None,
        "device_rows": len(device_rows),
        "trace_mb": round(Path(f"{exported}.gz").stat().st_size / 2**20, 2),
    }


def covered(intervals: list[tuple[float, float]]) -> float:
    """The length of the union of intervals: overlapping rows (a kernel and its copy, two
    streams) count once."""
    total, reached = 0.0, -math.inf
    for start, end in sorted(intervals):
        if end > reached:
            total += end - max(start, reached)
            reached = end
    return total


def compiled_step(shape: str, count: int, device: torch.device) -> dict:
    """The step time compiled, after a warm-up that compiles (and records the CUDA graphs of)
    the shapes the steps meet."""
    steps = Steps(shape, device, compiled=True)
    warm_up = steps.run(10)
    seconds = steps.run(count)
    return {"compiled_step_ms": round(1000 * seconds / count, 2), "compile_s": round(warm_up, 1)}


def worker(shape: str, count: int) -> None:
    """One process of the sweep: set up and warm up, say so, wait for the start, then time."""
    steps = Steps(shape, resolve_device("auto"))
    steps.run(2)
    print("ready", flush=True)
    sys.stdin.readline()
    print(steps.run(count), flush=True)


def sweep(shape: str, workers: int, count: int) -> float:
    """Steps per second of `workers` processes training at once on this machine's device."""
    command = [sys.executable, __file__, "worker", "--shape", shape, "--steps", str(count)]
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", threads))
    processes = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(workers)
    ]
    try:
        for process in processes:
            if process.stdout.readline().strip() != "ready":
                raise SystemExit(f"a worker failed to start (exit code {process.wait()})")
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        seconds = [float(process.stdout.readline()) for process in processes]
    finally:  # a failed worker ends the sweep: none is left waiting for its start
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait()
    return workers * count / max(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("stage", choices=["busy", "compile", "sweep", "worker"])
    parser.add_argument("--shape", choices=list(SHAPES), default="xlmr-base")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per figure")
    parser.add_argument("--workers", type=int, default=1, help="processes of the sweep")
    args = parser.parse_args()
    if args.stage == "worker":
        worker(args.shape, args.steps)
        return
    device = resolve_device("auto")
    named = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "shape": args.shape,
    }
    if args.stage == "busy":
        out = Path(os.environ.get("OUT") or "/tmp")
        emit("busy", **named, **busy_fraction(Steps(args.shape, device), 3, out))
    elif args.stage == "compile":
        emit("compile", **named, **compiled_step(args.shape, args.steps, device))
    else:
        rate = sweep(args.shape, args.workers, args.steps)
        emit("sweep", **named, workers=args.workers, steps_per_s=round(rate, 3))


if __name__ == "__main__":
    main()

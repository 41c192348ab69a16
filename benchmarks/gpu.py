"""What a lent GPU answers in one device call (benchmarks/device.sh runs it after bench.py):

- how busy the GPU is during an MPT step at XLM-R base's shape (a profiler trace: the kernels'
  time over the step's wall time; the trace lands in $OUT for chrome://tracing or Perfetto);
- what `--compile` buys: the step time with torch.compile (CUDA graphs on a GPU, batches padded
  to multiples of 32 tokens as the trainer pads them), and the seconds its warm-up took;
- what several runs on one GPU buy (`mpt grid --runs-per-gpu N`): N processes training MPT
  steps at once, their steps per second together, for N in 1, 2, 4, 8.

    python benchmarks/gpu.py [--shape xlmr-base] [--steps 20] [--workers 1,2,4,8] [--no-compile]

Prints a table, then one JSON line. On a CPU it runs too (a rehearsal: small --steps), without
the busy fraction.
"""

from __future__ import annotations

import argparse
import json
import os
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
            compile_model(self.method.model, device)
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
    """The kernels' time over the wall time of `count` profiled steps (after a warm-up)."""
    from torch.profiler import ProfilerActivity, profile

    steps.run(3)
    gpu = steps.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    with profile(activities=activities) as trace:
        seconds = steps.run(count)
    trace.export_chrome_trace(str(out / "mpt-step-trace.json"))
    kernel_us = sum(event.self_device_time_total for event in trace.key_averages())
    return {
        "step_ms": round(1000 * seconds / count, 2),
        "gpu_busy_fraction": round(kernel_us / (seconds * 1e6), 3) if gpu else None,
    }


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
    command = [sys.executable, __file__, "--worker", "--shape", shape, "--steps", str(count)]
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", threads))
    processes = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(workers)
    ]
    for process in processes:
        if process.stdout.readline().strip() != "ready":
            raise SystemExit(f"a worker failed to start (exit code {process.wait()})")
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    seconds = [float(process.stdout.readline()) for process in processes]
    for process in processes:
        process.wait()
    return workers * count / max(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", choices=list(SHAPES), default="xlmr-base")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per figure")
    parser.add_argument("--workers", default="1,2,4,8", help="process counts of the sweep")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled step")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.shape, args.steps)
        return
    device = resolve_device("auto")
    out = Path(os.environ.get("OUT") or "/tmp")
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "shape": args.shape,
        **busy_fraction(Steps(args.shape, device), args.steps, out),
    }
    if not args.no_compile:
        result |= compiled_step(args.shape, args.steps, device)
    rates = {n: sweep(args.shape, n, args.steps) for n in map(int, args.workers.split(","))}
    result["steps_per_s_by_workers"] = {str(n): round(rate, 3) for n, rate in rates.items()}
    single = rates.get(1)
    if single:
        result["speedup_by_workers"] = {str(n): round(r / single, 2) for n, r in rates.items()}
    report(result)
    print(json.dumps(result))


def report(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    busy = result["gpu_busy_fraction"]
    console.print(
        f"MPT step at {result['shape']} on {result['device']}: {result['step_ms']:.1f} ms"
        + ("" if busy is None else f", GPU busy {100 * busy:.0f}% of it")
    )
    if "compiled_step_ms" in result:
        console.print(
            f"compiled: {result['compiled_step_ms']:.1f} ms a step "
            f"(the warm-up, compiling: {result['compile_s']:.0f} s)"
        )
    table = Table(title="runs sharing the device")
    for column in ("processes", "steps/s together", "speed-up"):
        table.add_column(column, justify="right")
    speedups = result.get("speedup_by_workers", {})
    for workers, rate in result["steps_per_s_by_workers"].items():
        table.add_row(workers, f"{rate:.2f}", f"{speedups.get(workers, 0):.2f}x")
    console.print(table)


if __name__ == "__main__":
    main()

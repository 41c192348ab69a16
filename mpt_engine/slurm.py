"""A grid's missing runs as one Slurm job array, through submitit (the optional extra mpt[slurm]).

Each array task trains one run, or several one after another in one process (keeping what
runs share: warm.WarmCache), into the shared run store ($MPT_HOME on a filesystem every node
sees). What was submitted is appended to $MPT_HOME/slurm/submissions.jsonl, so that the status of
a grid (the store and the scheduler's queue together), its cancellation and the task logs can be
found later, from any command.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mpt_engine.config import Precision, RunConfig
from mpt_engine.errors import InvalidInput, SourceUnavailable
from mpt_engine.paths import slurm_dir
from mpt_engine.record import now
from mpt_engine.run_state import DONE, UNFINISHED, RunStatus
from mpt_engine.store import RunStore

if TYPE_CHECKING:
    from mpt_engine.runner import Execution  # imports torch; the front ends do not need it yet

# Slurm states of a task in the queue that mean it runs; any other (PENDING, CONFIGURING,
# REQUEUED, a hold...) means it waits.
ACTIVE = ("RUNNING", "COMPLETING", "SUSPENDED")


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    gpus_per_run: int = 1
    minutes: int = 240  # the time limit of each array task
    max_parallel: int = 16  # the array's concurrency cap
    runs_per_task: int = 1  # runs an array task trains one after another
    extra: Mapping[str, str] = field(default_factory=dict)  # --slurm-option KEY=VALUE

    @property
    def auto_precision(self) -> Precision:
        """What precision auto means on the compute nodes, decided here on the submitting node
        (a run's id names its precision, and the grid's status and resubmission need the ids):
        bf16 on GPU nodes (the A100/H100 generation has it; for older GPUs give --precision
        fp32), fp32 on CPU nodes."""
        return Precision.BF16 if self.gpus_per_run else Precision.FP32


def submissions_path():
    return slurm_dir() / "submissions.jsonl"


def submissions() -> dict[str, dict[str, Any]]:
    """The latest submission of every run: its job id and task logs."""
    latest: dict[str, dict[str, Any]] = {}
    try:
        lines = submissions_path().read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return latest
    for line in lines:
        try:
            record = json.loads(line)
            latest[record["run_id"]] = record
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a torn line from an interrupted submission
    return latest


def as_found(
    configs: Sequence[RunConfig], store: RunStore, auto_precision: Precision
) -> list[RunConfig]:
    """A grid's runs as they were submitted or stored, for its status and cancellation.

    A run's id names its resolved precision, and what precision auto meant was decided where
    the grid was submitted (bf16 for GPU nodes, fp32 on a CPU), which need not be where the
    status is asked for: a run of precision auto is found under either reading (both, if both
    exist), else it is new and takes `auto_precision`."""
    submitted = submissions()
    runs: dict[str, RunConfig] = {}
    for config in configs:
        readings = [config.resolved(precision) for precision in (Precision.FP32, Precision.BF16)]
        if config.precision is not Precision.AUTO:
            readings = [config.resolved()]
        found = [
            run for run in readings if run.run_id in submitted or store.status(run.run_id) != "new"
        ]
        for run in found or [config.resolved(auto_precision)]:
            runs.setdefault(run.run_id, run)
    return list(runs.values())


def queue_states(job_ids: Sequence[str]) -> dict[str, RunStatus]:
    """Scheduler state (pending or running) of the given array tasks still in the queue."""
    if not job_ids:
        return {}
    completed = subprocess.run(
        ["squeue", "-h", "-r", "-o", "%i %T"], capture_output=True, text=True, timeout=60
    )
    if completed.returncode != 0:
        raise SourceUnavailable(
            f"squeue failed: {completed.stderr.strip() or completed.returncode}"
        )
    wanted, states = set(job_ids), {}
    for line in completed.stdout.splitlines():
        job_id, _, state = line.strip().partition(" ")
        if job_id in wanted:
            states[job_id] = RunStatus.RUNNING if state in ACTIVE else RunStatus.PENDING
    return states


def grid_status(configs: Sequence[RunConfig], store: RunStore) -> list[tuple[RunConfig, str, str]]:
    """(config, status, job id) per run: finished, pending, running, failed, diverged,
    interrupted, incomplete (a job that ended without a result: failed or pre-empted) or new."""
    submitted = submissions()
    jobs = [submitted[c.run_id]["job_id"] for c in configs if c.run_id in submitted]
    states = queue_states(jobs) if jobs and shutil.which("squeue") else {}
    rows = []
    for config in configs:
        job = submitted.get(config.run_id, {}).get("job_id", "")
        status = store.status(config.run_id)
        if status not in DONE and status is not RunStatus.RUNNING and job in states:
            status = states[job]
        rows.append((config, status, job))
    return rows


def submit(
    configs: Sequence[RunConfig],
    store: RunStore,
    options: SlurmOptions,
    execution: Execution | None = None,
) -> list[dict[str, Any]]:
    """Submit the runs that are neither finished nor queued nor running, as one job array of
    tasks of `options.runs_per_task` runs; each task executes its runs as `execution` says
    (checkpoint, trackers)."""
    if shutil.which("sbatch") is None:
        raise SourceUnavailable("no Slurm here: sbatch is not on the PATH; use {executor} local")
    try:
        import submitit
    except ImportError:
        raise SourceUnavailable(
            "{executor} slurm needs submitit: pip install 'mpt[slurm]'"
        ) from None
    busy = DONE | UNFINISHED
    todo = [config for config, status, _ in grid_status(configs, store) if status not in busy]
    if not todo:
        return []
    folder = slurm_dir() / "jobs"
    executor = submitit.SlurmExecutor(folder=folder / "%j")
    parameters: dict[str, Any] = dict(
        job_name="mpt",
        time=options.minutes,
        array_parallelism=options.max_parallel,
        additional_parameters={
            key.replace("-", "_"): value for key, value in options.extra.items()
        },
    )
    if options.partition:
        parameters["partition"] = options.partition
    if options.gpus_per_run:
        parameters["gpus_per_node"] = options.gpus_per_run
    try:
        executor.update_parameters(**parameters)
    except ValueError as error:
        raise InvalidInput(f"Slurm options: {error}") from None
    with contextlib.redirect_stderr(io.StringIO()):  # submitit echoes sbatch's error: say it once
        try:
            size = options.runs_per_task
            tasks = [todo[start : start + size] for start in range(0, len(todo), size)]
            how = (execution.to_json() if execution else "{}",) * len(tasks)
            runs = [json.dumps([config.to_dict() for config in task]) for task in tasks]
            jobs = executor.map_array(run_task, runs, how)
        except submitit.core.utils.FailedJobError as error:
            reason = (str(error).strip().splitlines() or ["no reason given"])[-1]
            raise SourceUnavailable(f"Slurm refused the job array: {reason}") from None
    records = [
        {
            "run_id": config.run_id,
            "job_id": job.job_id,
            "stdout": str(job.paths.stdout),
            "stderr": str(job.paths.stderr),
            "submitted_at": now(),
        }
        for task, job in zip(tasks, jobs, strict=True)
        for config in task
    ]
    path = submissions_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:
        file.write("".join(json.dumps(record) + "\n" for record in records))
    return records


def cancel(configs: Sequence[RunConfig], store: RunStore) -> list[str]:
    """scancel the array tasks of these runs that are still queued or running."""
    jobs = [job for _, status, job in grid_status(configs, store) if job and status in UNFINISHED]
    if jobs:
        completed = subprocess.run(["scancel", *jobs], capture_output=True, text=True, timeout=60)
        if completed.returncode != 0:
            raise SourceUnavailable(f"scancel failed: {completed.stderr.strip()}")
    return jobs


def run_task(configs_json: str, execution_json: str = "{}") -> list[dict[str, Any]]:
    """One array task, on a compute node: train its runs into the shared store, one after
    another in this process; a run that fails is recorded in its folder and the next goes on."""
    from mpt_engine.runner import Execution, execute
    from mpt_engine.warm import WarmCache

    job = (
        f"{os.environ.get('SLURM_ARRAY_JOB_ID', '?')}_{os.environ.get('SLURM_ARRAY_TASK_ID', '?')}"
    )
    execution, warm = Execution.from_json(execution_json), WarmCache()
    results = []
    for values in json.loads(configs_json):
        config = RunConfig.from_dict(values)
        result: dict[str, Any] = {"run_id": config.run_id, "job_id": job}
        try:
            for event in execute(
                config, execution=execution, annotations={"slurm_job": job}, warm=warm
            ):
                if event.kind == "result":
                    result["average"] = event.average
        except Exception as error:  # recorded by execute, in the run's folder
            result["error"] = str(error)
        results.append(result)
    return results

"""Shared fixtures: an isolated run store, a shared tokenizer cache, tiny models built in code."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mpt-cache")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path, cache_root):
    """Every test gets its own run store; tiny tokenizers are cached once per session.

    The hub is marked offline so that nothing here can reach for the network."""
    monkeypatch.setenv("MPT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MPT_CACHE", str(cache_root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MPT_DATA_DIR", raising=False)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "xnli").is_dir():
        pytest.skip(f"staged data not found at {SHARED_DATA} (see shared/data/README.md)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tokenizer(cache_root):
    """A tiny XLM-R-format tokenizer trained on the synthetic sample and real-looking text."""
    import os

    os.environ["MPT_CACHE"] = str(cache_root)
    from mpt_engine.backbone import tiny_tokenizer
    from mpt_engine.data.synthetic import SyntheticSource

    source = SyntheticSource()
    corpus = [
        text
        for language in ("en", "de", "zh")
        for example in source.xnli("dev", language)[:200]
        for text in (example.premise, example.hypothesis)
    ]
    corpus += ["The cat sat on the mat. Was it right? Maybe it was wrong!"] * 20
    return tiny_tokenizer(corpus)


@pytest.fixture
def masked_lm(tokenizer):
    import torch
    from transformers import XLMRobertaForMaskedLM

    from mpt_engine.backbone import tiny_config

    torch.manual_seed(0)
    return XLMRobertaForMaskedLM(tiny_config(tokenizer)).eval()


# A single-node Slurm for the --executor slurm tests (Debian's slurm-wlm and munge).
DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")

SLURM_CONF = """\
ClusterName=mpttest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
SlurmctldPort={controller_port}
SlurmdPort={node_port}
ReturnToService=2
KillWait=2
MpiDefault=none
NodeName={host} CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(pid_file: Path) -> None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        os.kill(int(pid_file.read_text().split()[0]), 15)


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """SLURM_CONF of a running single-node cluster, or a skip that says why there is none."""
    missing = [name for name in DAEMONS if shutil.which(name) is None]
    if missing:
        pytest.skip(
            f"Slurm is not installed (missing {', '.join(missing)}); apt install slurm-wlm munge"
        )
    if os.geteuid() != 0:
        pytest.skip("starting slurmctld/slurmd with SlurmUser=root needs root")
    root = Path(tempfile_dir := str(tmp_path_factory.mktemp("slurm")))
    (root / "state").mkdir()
    (root / "spool").mkdir()
    os.chmod(root, 0o755)
    key = root / "munge.key"
    commands = [
        ["mungekey", "--create", f"--keyfile={key}"],
        [
            "munged", "--force", f"--socket={root}/munge.socket", f"--key-file={key}",
            f"--log-file={root}/munged.log", f"--pid-file={root}/munged.pid",
            f"--seed-file={root}/munged.seed",
        ],
    ]  # fmt: skip
    conf = root / "slurm.conf"
    conf.write_text(
        SLURM_CONF.format(
            host=socket.gethostname().split(".")[0],
            root=tempfile_dir,
            controller_port=free_port(),
            node_port=free_port(),
            cpus=os.cpu_count(),
        )
    )
    env = dict(os.environ, SLURM_CONF=str(conf))
    commands += [["slurmctld", "-f", str(conf)], ["slurmd", "-f", str(conf)]]
    try:
        for command in commands:
            completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=30)
            if completed.returncode != 0:
                pytest.skip(f"{command[0]} failed to start: {completed.stderr.strip()[-300:]}")
        deadline = time.monotonic() + 30
        while True:
            state = subprocess.run(
                ["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=env
            )
            if state.stdout.strip() in ("idle", "mix", "alloc"):
                break
            if time.monotonic() > deadline:
                pytest.skip(
                    f"the Slurm node did not come up: {state.stdout.strip()} {state.stderr.strip()}"
                )
            time.sleep(0.5)
        yield str(conf)
    finally:
        # Jobs outlive slurmd: cancel them all and wait for the queue to drain before stopping.
        subprocess.run(
            ["scancel", "--full", "--signal=KILL", "--user=root"], env=env, capture_output=True
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            queue = subprocess.run(["squeue", "-h"], capture_output=True, text=True, env=env)
            if queue.returncode != 0 or not queue.stdout.strip():
                break
            time.sleep(0.5)
        for name in ("slurmd.pid", "slurmctld.pid", "munged.pid"):
            stop(root / name)

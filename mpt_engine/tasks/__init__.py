"""Tasks as data: a task is a small YAML or JSON file that says what an example is, where the
data lies, how the prompts read it and how results are grouped. XNLI (the paper's) and PAWS-X are
built in beside this module; `--task PATH` takes a user's own file.

A file is checked whole when it is loaded, and every problem names its key
(`task file t.yaml: pct.templates.de: missing the <mask>`). Local data paths in a user's file are
relative to the file; those of the built-in tasks to MPT_DATA_DIR.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpt_engine.config import DEFAULT_TASK
from mpt_engine.errors import InvalidInput
from mpt_engine.settled import settled

BUILT_IN = Path(__file__).resolve().parent
SPLITS = ("train", "dev", "test")
MASK = "<mask>"


@dataclass(frozen=True)
class Cloze:
    """The pieces of Eq. (9) around the texts: X_P {after_first} X_H {after_second} <mask>
    {after_mask}."""

    after_first: str = "."
    after_second: str = "?"
    after_mask: str = "."


@dataclass(frozen=True)
class Task:
    name: str
    languages: tuple[str, ...]  # every test language, the source language among them
    labels: tuple[str, ...]  # label index i is labels[i]
    fields: tuple[str, ...]  # the row's text fields: one (a single text) or two (a pair)
    verbalizer: Mapping[str, str]  # label -> word (SP and MPT)
    source_language: str = "en"
    label_field: str = "label"
    description: str = ""
    verbalizer_by_language: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    cloze: Cloze = Cloze()
    pct_verbalizer: Mapping[str, str] = field(default_factory=dict)
    pct_templates: Mapping[str, str] = field(default_factory=dict)  # language -> template
    families: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    hub: Mapping[str, Any] = field(default_factory=dict)  # dataset, config, splits
    local: Mapping[str, str] = field(default_factory=dict)  # split -> path with {language}
    test_size: int | None = None  # test examples per language, for time estimates
    folder: Path | None = None  # where a user's file lies (its local paths are relative to it)

    @property
    def target_languages(self) -> tuple[str, ...]:
        return tuple(language for language in self.languages if language != self.source_language)

    def words(self, language: str) -> Mapping[str, str]:
        """The verbalizer a language reads (SP and MPT): its own, else the task's."""
        return self.verbalizer_by_language.get(language, self.verbalizer)

    def label_index(self, value: Any) -> int:
        """A label as data files write it (its name, or its index) as an index; ValueError."""
        if isinstance(value, str) and value in self.labels:
            return self.labels.index(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(self.labels):
            return value
        raise ValueError(f"unknown label {value!r}; expected one of {list(self.labels)}")

    def check_pct(self) -> None:
        missing = [language for language in self.languages if language not in self.pct_templates]
        if missing or not self.pct_verbalizer:
            what = f"templates for {', '.join(missing)}" if missing else "a verbalizer"
            raise InvalidInput(f"task {self.name} has no PCT {what} (its pct: section)")


def is_built_in(reference: str) -> bool:
    return (BUILT_IN / f"{reference}.yaml").is_file() and "/" not in reference


def built_in_names() -> list[str]:
    return sorted(path.stem for path in BUILT_IN.glob("*.yaml"))


def task_file(reference: str) -> Path:
    """The file a task reference names: a built-in name or a path (.yaml, .yml, .json)."""
    if is_built_in(reference):
        return BUILT_IN / f"{reference}.yaml"
    path = Path(reference).expanduser()
    if path.suffix not in (".yaml", ".yml", ".json"):
        names = ", ".join(built_in_names())
        raise InvalidInput(
            f"unknown {{task}} {reference!r}; choose {names} or a task file (.yaml, .json)",
            field="task",
            value=reference,
        )
    if not path.is_file():
        raise InvalidInput(f"{{task}} {reference}: no such file", field="task", value=reference)
    return path


def load_task(reference: str = DEFAULT_TASK) -> Task:
    """The task a reference names, checked (InvalidInput naming the bad key)."""
    path = task_file(reference)
    stat = path.stat()
    load = _load if settled(stat.st_mtime_ns) else _load.__wrapped__
    return load(path.resolve(), stat.st_mtime_ns, stat.st_size)


def task_of(config: Mapping[str, Any]) -> Task:
    """The task of a stored run's config; XNLI's shape when its file can no longer be read (a
    user's task file moved or deleted since), so that reading a store never fails on it."""
    try:
        return load_task(config.get("task") or DEFAULT_TASK)
    except InvalidInput:
        return load_task(DEFAULT_TASK)


@functools.cache
def _load(path: Path, mtime_ns: int, size: int) -> Task:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"task file {path}: unreadable ({error})") from None
    try:
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        reason = " ".join(str(error).split())
        raise InvalidInput(f"task file {path}: not valid {kind} ({reason})") from None
    shown = path.name if path.parent == BUILT_IN else str(path)
    folder = None if path.parent == BUILT_IN else path.parent
    return parse(values, shown, folder)


KEYS = {
    "name": True,
    "languages": True,
    "labels": True,
    "fields": True,
    "verbalizer": True,
    "source_language": False,
    "label_field": False,
    "description": False,
    "verbalizer_by_language": False,
    "cloze": False,
    "pct": False,
    "families": False,
    "data": True,
}  # key -> required


def parse(values: Any, shown: str, folder: Path | None = None) -> Task:
    """A task from the values of its file, every problem an InvalidInput naming its key."""
    check = _Checker(shown)
    check.mapping("", values)
    for key in values:
        if key not in KEYS:
            check.fail(key, f"unknown key; expected one of {', '.join(KEYS)}")
    for key, required in KEYS.items():
        if required and key not in values:
            check.fail(key, "missing")
    name = check.word("name", values["name"])
    languages = check.words("languages", values["languages"])
    labels = check.words("labels", values["labels"], at_least=2)
    fields = check.words("fields", values["fields"])
    if len(fields) > 2:
        check.fail("fields", "one text field or two (a pair)")
    source = check.word("source_language", values.get("source_language", "en"))
    if source not in languages:
        check.fail("source_language", f"{source!r} is not one of the languages")
    verbalizer = check.verbalizer("verbalizer", values["verbalizer"], labels)
    by_language = values.get("verbalizer_by_language") or {}
    check.mapping("verbalizer_by_language", by_language)
    own_words = {
        language: check.verbalizer(f"verbalizer_by_language.{language}", words, labels)
        for language, words in by_language.items()
    }
    cloze_values = values.get("cloze") or {}
    check.mapping("cloze", cloze_values)
    for key in cloze_values:
        if key not in Cloze.__dataclass_fields__:
            expected = ", ".join(Cloze.__dataclass_fields__)
            check.fail(f"cloze.{key}", f"unknown key; expected {expected}")
        check.text(f"cloze.{key}", cloze_values[key])
    pct = values.get("pct") or {}
    check.mapping("pct", pct)
    pct_words = check.verbalizer("pct.verbalizer", pct.get("verbalizer"), labels) if pct else {}
    templates = pct.get("templates", {}) if pct else {}
    check.mapping("pct.templates", templates)
    for language, template in templates.items():
        check.text(f"pct.templates.{language}", template)
        if template.count(MASK) != 1 or template.count("{}") != (len(fields) == 2):
            placeholder = " and one {} for the second text" if len(fields) == 2 else ""
            check.fail(f"pct.templates.{language}", f"needs one {MASK}{placeholder}")
    families = values.get("families") or {}
    check.mapping("families", families)
    for family, members in families.items():
        for language in check.words(f"families.{family}", members):
            if language not in languages:
                check.fail(f"families.{family}", f"{language!r} is not one of the languages")
    data = values["data"]
    check.mapping("data", data)
    for key in data:
        if key not in ("hub", "local", "test_size"):
            check.fail(f"data.{key}", "unknown key; expected hub, local, test_size")
    if not data.get("hub") and not data.get("local"):
        check.fail("data", "needs hub or local (or both)")
    hub = data.get("hub") or {}
    if hub:
        check.mapping("data.hub", hub)
        check.text("data.hub.dataset", hub.get("dataset"))
        check.text("data.hub.config", hub.get("config", "{language}"))
        splits = hub.get("splits", {split: split for split in SPLITS})
        check.mapping("data.hub.splits", splits)
        for split in ("dev", "test"):
            check.text(f"data.hub.splits.{split}", splits.get(split))
        config = hub.get("config", "{language}")
        hub = {"dataset": hub["dataset"], "config": config, "splits": splits}
    local = data.get("local") or {}
    check.mapping("data.local", local)
    for split, pattern in local.items():
        if split not in SPLITS:
            check.fail(f"data.local.{split}", "unknown split; expected train, dev, test")
        check.text(f"data.local.{split}", pattern)
    if local and not all(split in local for split in ("dev", "test")):
        check.fail("data.local", "needs at least dev and test")
    test_size = data.get("test_size")
    if test_size is not None and (not isinstance(test_size, int) or test_size < 1):
        check.fail("data.test_size", "a positive integer")
    return Task(
        name=name,
        languages=languages,
        labels=labels,
        fields=fields,
        verbalizer=verbalizer,
        source_language=source,
        label_field=check.word("label_field", values.get("label_field", "label")),
        description=str(values.get("description", "")),
        verbalizer_by_language=own_words,
        cloze=Cloze(**cloze_values),
        pct_verbalizer=pct_words,
        pct_templates=dict(templates),
        families={family: tuple(members) for family, members in families.items()},
        hub=hub,
        local=dict(local),
        test_size=test_size,
        folder=folder,
    )


class _Checker:
    def __init__(self, shown: str) -> None:
        self.shown = shown

    def fail(self, key: str, problem: str):
        raise InvalidInput(f"task file {self.shown}: {key or 'the file'}: {problem}")

    def mapping(self, key: str, value: Any) -> None:
        if not isinstance(value, dict):
            self.fail(key, "expected a mapping (key: value)")

    def text(self, key: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(key, "expected a non-empty text")
        return value

    def word(self, key: str, value: Any) -> str:
        if not isinstance(value, str) or not value or any(c.isspace() for c in value):
            self.fail(key, "expected a word (no spaces)")
        return value

    def words(self, key: str, value: Any, at_least: int = 1) -> tuple[str, ...]:
        if not isinstance(value, list) or len(value) < at_least:
            self.fail(key, f"expected a list of at least {at_least}")
        words = tuple(self.word(f"{key}[{index}]", item) for index, item in enumerate(value))
        if len(set(words)) != len(words):
            self.fail(key, "has a value twice")
        return words

    def verbalizer(self, key: str, value: Any, labels: tuple[str, ...]) -> dict[str, str]:
        self.mapping(key, value)
        if set(value) != set(labels):
            self.fail(key, f"needs a word for each label: {', '.join(labels)}")
        return {label: self.text(f"{key}.{label}", value[label]) for label in labels}

import json
import os
import time

import pytest

from mpt_engine.config import DataKind, RunConfig
from mpt_engine.data import load_task_data
from mpt_engine.data.aux import PAWSX_LANGUAGES, alignment_corpus, read_pairs
from mpt_engine.data.files import content_hash
from mpt_engine.data.local import LocalSource
from mpt_engine.data.synthetic import SyntheticSource
from mpt_engine.data.task import sample_per_class
from mpt_engine.errors import InvalidInput, SourceUnavailable
from mpt_engine.jsonl import read_jsonl
from mpt_engine.languages import LABELS, TARGET_LANGUAGES, XNLI_LANGUAGES

PAWSX_XNLI_LANGUAGES = [language for language in PAWSX_LANGUAGES if language in TARGET_LANGUAGES]


def test_xnli_counts_per_language(shared_data):
    source = LocalSource(shared_data)
    for language in XNLI_LANGUAGES:
        test = source.xnli("test", language)
        dev = source.xnli("dev", language)
        assert (len(test), len(dev)) == (5010, 2490), language
        assert [sum(e.label == label for e in test) for label in range(3)] == [1670] * 3


def test_xnli_is_row_parallel(shared_data):
    source = LocalSource(shared_data)
    labels = [example.label for example in source.xnli("test", "en")]
    assert labels == [example.label for example in source.xnli("test", "sw")]


@pytest.mark.parametrize("shots", [1, 2, 4, 8, 16, 32, 64, 128, 256])
def test_paper_splits_hold_k_per_class(shared_data, shots):
    source = LocalSource(shared_data)
    for split in ("train", "dev"):
        rows = source.paper_split(split, shots)
        assert len(rows) == 3 * shots
        assert sorted(e.label for e in rows) == sorted(list(range(3)) * shots)


def test_task_data_from_local_folder(shared_data, monkeypatch):
    monkeypatch.setenv("MPT_DATA_DIR", str(shared_data))
    config = RunConfig(data=DataKind.LOCAL, shots=4, test_limit=30, aux_size=100)
    data = load_task_data(config)
    assert (len(data.train), len(data.dev)) == (12, 12)
    assert set(data.test) == set(XNLI_LANGUAGES)
    assert all(len(rows) == 30 for rows in data.test.values())
    assert len(data.aux) == 100
    assert {pair.language for pair in data.aux} <= set(PAWSX_XNLI_LANGUAGES)
    assert len({pair.language for pair in data.aux}) == len(PAWSX_XNLI_LANGUAGES)
    assert all("NS" not in (p.target.premise, p.target.hypothesis) for p in data.aux)
    assert set(data.fingerprints) >= {"train", "dev", "aux", "test.en"}


def test_pawsx_pairs_are_translations(shared_data):
    source = LocalSource(shared_data)
    english, german = source.pawsx("en"), source.pawsx("de")
    pair = next(p for p in alignment_corpus(source, "pawsx", 500) if p.language == "de")
    key = next(k for k, example in english.items() if example == pair.source)
    assert german[key] == pair.target


def test_xnli_dev_corpus_pairs_english_with_each_target_language(shared_data):
    pairs = alignment_corpus(LocalSource(shared_data), "xnli-dev", 500)
    assert len(pairs) == 500
    assert {pair.language for pair in pairs} == set(XNLI_LANGUAGES) - {"en"}
    assert all(pair.source.label == -1 for pair in pairs)  # used without annotations


def test_aux_corpus_never_holds_the_runs_kshot_inputs(shared_data):
    source = LocalSource(shared_data)
    kshot = source.paper_split("train", 256) + source.paper_split("dev", 256)
    texts = {(example.premise, example.hypothesis) for example in kshot}
    unfiltered = alignment_corpus(source, "xnli-dev", 2000)
    assert sum((p.source.premise, p.source.hypothesis) in texts for p in unfiltered) > 100
    pairs = alignment_corpus(source, "xnli-dev", 800, exclude=kshot)
    assert len(pairs) == 800
    assert not any((p.source.premise, p.source.hypothesis) in texts for p in pairs)


def test_model_selection_never_reads_a_premise_the_alignment_task_trained_on(
    shared_data, monkeypatch
):
    """XNLI dev gives each premise three hypotheses; the paper's dev splits are XNLI dev rows."""
    monkeypatch.setenv("MPT_DATA_DIR", str(shared_data))
    config = RunConfig(data=DataKind.LOCAL, shots=64, aux="xnli-dev", test_limit=1)
    data = load_task_data(config)
    aligned = {pair.source.premise for pair in data.aux}
    assert len(data.aux) == 500
    assert sum(example.premise in aligned for example in data.dev + data.train) == 0
    source = LocalSource(shared_data)
    unfiltered = {pair.source.premise for pair in alignment_corpus(source, "xnli-dev", 500)}
    assert sum(example.premise in unfiltered for example in data.dev) > 50  # what it guards


def test_aux_corpus_too_small_says_how_many(shared_data):
    with pytest.raises(
        InvalidInput, match=r"has \d+ usable pairs, fewer than aux size 8000"
    ) as caught:
        alignment_corpus(LocalSource(shared_data), "pawsx", 8000)
    usable = int(caught.value.allowed.removeprefix("at most "))
    assert (caught.value.field, caught.value.value, usable > 1000) == ("aux_size", 8000, True)


def test_sampled_split_needs_a_training_pool(shared_data):
    with pytest.raises(SourceUnavailable, match=r"xnli/train/en\.jsonl is missing"):
        LocalSource(shared_data).xnli("train", "en")


def test_missing_data_folder():
    with pytest.raises(SourceUnavailable, match="is not a folder"):
        LocalSource("/nonexistent/mpt-data")


def test_corrupt_file_names_file_and_line(tmp_path):
    folder = tmp_path / "xnli" / "test"
    folder.mkdir(parents=True)
    good = {"premise": "a", "hypothesis": "b", "label": "neutral"}
    (folder / "de.jsonl").write_text(json.dumps(good) + "\n{broken\n")
    with pytest.raises(InvalidInput, match=r"de\.jsonl:2: not valid JSON"):
        LocalSource(tmp_path).xnli("test", "de")
    (folder / "fr.jsonl").write_text(json.dumps(good | {"label": "yes"}) + "\n")
    with pytest.raises(InvalidInput, match=r"fr\.jsonl:1: unknown label 'yes'"):
        LocalSource(tmp_path).xnli("test", "fr")


def test_user_pairs_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    row = {
        "source_premise": "A man sleeps.",
        "source_hypothesis": "Someone rests.",
        "target_premise": "Ein Mann schläft.",
        "target_hypothesis": "Jemand ruht.",
        "language": "de",
    }
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n" + json.dumps({"x": 1}) + "\n")
    with pytest.raises(InvalidInput, match=r"pairs\.jsonl:2: missing text field"):
        read_pairs(path)
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n")
    (pair,) = alignment_corpus(None, f"file:{path}", 1)
    assert (pair.target.premise, pair.language) == ("Ein Mann schläft.", "de")
    with pytest.raises(SourceUnavailable, match="does not exist"):
        read_pairs(tmp_path / "absent.jsonl")


def test_sample_per_class_is_seeded_and_balanced():
    pool = SyntheticSource().xnli("train", "en")
    first = sample_per_class(pool, 5, 1, LABELS)
    assert first == sample_per_class(pool, 5, 1, LABELS)
    assert first != sample_per_class(pool, 5, 2, LABELS)
    assert [sum(pool[i].label == label for i in first) for label in range(3)] == [5, 5, 5]


def test_synthetic_sample_covers_every_language_in_parallel():
    source = SyntheticSource()
    english = source.xnli("test", "en")
    for language in XNLI_LANGUAGES:
        rows = source.xnli("test", language)
        assert [e.label for e in rows] == [e.label for e in english]
        assert all(e.premise and e.hypothesis for e in rows)
    assert source.xnli("test", "el")[0].premise != english[0].premise
    assert len(source.paper_split("train", 4)) == 12
    assert {e.label for e in source.paper_split("dev", 2)} == set(range(len(LABELS)))


def test_synthetic_task_data_runs_without_files():
    data = load_task_data(RunConfig(data="synthetic", aux_size=40, test_limit=10))
    assert len(data.aux) == 40
    assert {pair.language for pair in data.aux} <= set(PAWSX_XNLI_LANGUAGES)


def age(path, seconds: float = 60) -> None:
    then = time.time_ns() - int(seconds * 1e9)
    os.utime(path, ns=(then, then))


def test_a_data_file_is_parsed_once_until_it_changes(tmp_path):
    """A worker reads the test sets once for all its runs; an edited file is read again."""
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": "x"}\n')
    age(path)
    first = read_jsonl(path, ("a",))
    assert read_jsonl(path, ("a",)) is first
    path.write_text('{"a": "y"}\n\n{"a": "z"}\n')
    assert read_jsonl(path, ("a",)) == ((1, {"a": "y"}), (3, {"a": "z"}))


def test_a_file_rewritten_within_one_clock_step_is_never_served_stale(tmp_path):
    """The same size, inode and modification time (a rewrite within the file system's clock
    step of the last read): what the caches key by. A file changed that recently is read."""
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": "x"}\n')
    stat = path.stat()
    before = read_jsonl(path, ("a",)), content_hash(path)
    path.write_text('{"a": "y"}\n')
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (path.stat().st_ino, path.stat().st_size) == (stat.st_ino, stat.st_size)
    after = read_jsonl(path, ("a",)), content_hash(path)
    assert after[0] == ((1, {"a": "y"}),) and after[1] != before[1]
    with pytest.raises(SourceUnavailable, match="missing data file"):
        read_jsonl(tmp_path / "gone.jsonl")

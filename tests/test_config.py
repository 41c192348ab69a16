import dataclasses

import pytest

from mpt_engine.config import (
    DataKind,
    Method,
    Precision,
    PromptPosition,
    RunConfig,
    SplitKind,
    TranslatorKind,
)
from mpt_engine.errors import InvalidInput
from mpt_engine.presets import build_config


def test_defaults_are_the_papers_setup():
    config = RunConfig()
    assert (config.method, config.shots, config.seed) == (Method.MPT, 4, 1)
    assert config.model == "FacebookAI/xlm-roberta-base"
    assert (config.lr, config.batch_size, config.epochs, config.max_length) == (4e-5, 24, 50, 256)
    assert (config.prompt_length, config.position, config.translator) == (
        4,
        PromptPosition.SUFFIX,
        TranslatorKind.LINEAR2,
    )
    assert (config.alpha, config.aux, config.aux_size) == (0.5, "pawsx", 500)


BAD = [  # values, the field the error names, its message with fields by name
    ({"method": "bert"}, "method", "unknown method 'bert'"),
    ({"shots": 0}, "shots", "shots must be at least 1"),
    ({"shots": 2.5}, "shots", "shots must be an integer"),
    ({"alpha": 1.5}, "alpha", "alpha must be >= 0.0 and <= 1.0"),
    ({"alpha": -0.1}, "alpha", "alpha must be"),
    ({"prompt_length": 0}, "prompt_length", "prompt_length must be at least 1"),
    ({"translator": "mlp-3"}, "translator", "unknown translator 'mlp-3'"),
    ({"position": "middle"}, "position", "unknown position 'middle'"),
    ({"aux": "wiki"}, "aux", "unknown aux corpus 'wiki'"),
    ({"aux": "file:"}, "aux", "unknown aux corpus"),
    ({"lr": 0}, "lr", "lr must be > 0.0"),
    ({"split": "paper", "shots": 3}, "split", "use split sampled"),
    ({"seed": -1}, "seed", "seed must be at least 0"),
    ({"prompt_length": 300}, "prompt_length", "prompt_length 300 leaves no room"),
]


@pytest.mark.parametrize(("values", "field", "message"), BAD)
def test_bad_values_name_the_field_and_the_value(values, field, message):
    with pytest.raises(InvalidInput) as caught:
        RunConfig(**values)
    assert caught.value.field == field
    assert message in caught.value.phrased(lambda name: name)


def test_errors_are_phrased_by_each_front_end():
    """The engine names options as data; the CLI says --flags, the app its field labels, and
    plain words are what events and logs keep."""
    from mpt_tui.commands.options import flag
    from mpt_tui.wording import in_app_words

    with pytest.raises(InvalidInput) as caught:
        RunConfig(prompt_length=300, max_length=256)
    error = caught.value
    assert (error.field, error.value, error.allowed) == (
        "prompt_length",
        300,
        "less than max_length 256",
    )
    assert error.phrased(flag).startswith("--prompt-length 300 leaves no room")
    assert "in --max-length 256; lower --prompt-length" in error.phrased(flag)
    assert str(error).startswith("prompt length 300 leaves no room")
    assert "{" not in in_app_words(error) and "--" not in in_app_words(error)
    with pytest.raises(InvalidInput) as caught:
        RunConfig(shots=0)
    assert (caught.value.field, caught.value.value) == ("shots", 0)
    assert caught.value.allowed == "an integer from 1"


def test_strings_become_enums():
    config = RunConfig(method="sp", position="prefix", translator="lstm-2", data="local")
    assert config.method is Method.SP
    assert config.position is PromptPosition.PREFIX
    assert config.translator is TranslatorKind.LSTM2
    assert config.data is DataKind.LOCAL


def test_resolved_drops_fields_a_method_does_not_use():
    sp = RunConfig(method="sp", alpha=0.3, translator="lstm-1").resolved()
    assert (sp.alpha, sp.translator, sp.aux, sp.aux_size) == (None, None, None, None)
    assert sp.prompt_length == 4
    ft = RunConfig(method="ft").resolved()
    assert ft.prompt_length is None and ft.position is None
    # Options a method ignores do not change its run id.
    assert RunConfig(method="sp", alpha=0.3).run_id == RunConfig(method="sp").run_id
    assert RunConfig(method="mpt", alpha=0.3).run_id != RunConfig(method="mpt").run_id


def test_alpha_one_keeps_the_corpus_that_sets_the_schedule():
    no_kl = RunConfig(alpha=1.0).resolved()
    assert (no_kl.aux, no_kl.aux_size) == ("pawsx", 500)
    no_corpus = RunConfig(aux="none").resolved()
    assert (no_corpus.alpha, no_corpus.aux_size) == (1.0, None)
    assert RunConfig(alpha=0.3, aux="none").run_id == RunConfig(alpha=1.0, aux="none").run_id


def test_split_resolves_from_shots():
    assert RunConfig(shots=16).resolved().split is SplitKind.PAPER
    assert RunConfig(shots=5).resolved().split is SplitKind.SAMPLED


def test_run_id_is_a_stable_readable_hash():
    config = RunConfig(method="pct", shots=8, seed=3)
    assert config.run_id.startswith("pct-k8-s3-")
    assert config.run_id == RunConfig.from_dict(config.resolved().to_dict()).run_id
    assert config.run_id != dataclasses.replace(config, lr=1e-5).run_id


def test_preset_then_environment_then_explicit_options(tmp_path):
    smoke = build_config("smoke", {}, environ={})
    assert (smoke.model, smoke.data, smoke.epochs) == ("tiny", DataKind.SYNTHETIC, 3)
    local = build_config("smoke", {}, environ={"MPT_DATA_DIR": str(tmp_path)})
    assert local.data is DataKind.LOCAL
    explicit = build_config("smoke", {"epochs": 7, "data": "synthetic"}, {"MPT_DATA_DIR": "/d"})
    assert (explicit.epochs, explicit.data) == (7, DataKind.SYNTHETIC)
    with pytest.raises(InvalidInput, match="unknown preset 'fast'"):
        build_config("fast", {}, environ={})


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(InvalidInput, match="unknown config field"):
        RunConfig.from_dict({"method": "mpt", "colour": "red"})


def test_precision_auto_takes_the_meaning_of_the_training_device():
    from mpt_engine.device import for_device
    from mpt_engine.slurm import SlurmOptions

    on_cpu = for_device(RunConfig(), "cpu")
    assert on_cpu.precision is Precision.FP32
    assert on_cpu.run_id == RunConfig(precision="fp32").run_id
    assert for_device(RunConfig(precision="bf16"), "cpu").precision is Precision.BF16
    # Slurm decides on the submitting node: bf16 on GPU nodes, fp32 on CPU nodes
    assert SlurmOptions(gpus_per_run=1).auto_precision is Precision.BF16
    assert SlurmOptions(gpus_per_run=0).auto_precision is Precision.FP32
    assert RunConfig().resolved(Precision.BF16).run_id == RunConfig(precision="bf16").run_id


def test_an_e5_small_run_is_named_by_its_build_revision():
    """e5-small's build of r2 (its head fitted without the held-out rows) is another model than
    the one earlier runs used: its runs get new ids, e5-small-mlm's their own, and every other
    model keeps its ids."""
    from mpt_engine.config import identity

    e5, mlm = RunConfig(model="e5-small"), RunConfig(model="e5-small-mlm")
    assert identity(e5.resolved().to_dict())["model"] == "e5-small@r2"
    assert identity(mlm.resolved().to_dict())["model"] == "e5-small-mlm"
    assert len({e5.run_id, mlm.run_id, RunConfig(model="tiny").run_id}) == 3
    assert e5.to_dict()["model"] == "e5-small"  # what the user wrote is what the store shows

"""Each equation of the paper checked against an independent computation on a tiny model."""

import dataclasses
import math

import pytest
import torch

from mpt_engine.config import RunConfig, TranslatorKind
from mpt_engine.data import load_task_data
from mpt_engine.data.examples import Example
from mpt_engine.encoding import collate
from mpt_engine.losses import cross_entropy, symmetric_kl, total_loss
from mpt_engine.methods import build_method
from mpt_engine.model import PromptedMaskedLM
from mpt_engine.modules import PromptEncoder, build_translator
from mpt_engine.prompts import ClozeTemplate


def softmax(values):
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    return [e / sum(exps) for e in exps]


def test_cross_entropy_over_label_words():
    """Eq. (2)-(3): softmax over the label words' logits, -log of the gold one, batch mean."""
    torch.manual_seed(0)
    logits = torch.randn(4, 50)
    label_ids, labels = [7, 3, 41], torch.tensor([0, 2, 1, 2])
    expected = (
        sum(
            -math.log(softmax([logits[row, i].item() for i in label_ids])[labels[row]])
            for row in range(4)
        )
        / 4
    )
    actual = cross_entropy(logits[:, label_ids], labels)
    assert actual.item() == pytest.approx(expected, rel=1e-6)


def test_label_word_rows_equal_the_full_vocabulary_logits(tokenizer, task_data):
    """W_Z restricts W_lh to the label words; computing only those rows changes nothing."""
    method = method_for(tokenizer, task_data)
    method.model.eval()
    batch = collate(method.encode(task_data.test["en"], "en"), method.pad_id)
    with torch.no_grad():
        prompt = method.model.source_prompt()
        full = method.model(batch, prompt)
        rows = method.label_logits(batch, prompt)
    assert full.shape[1] == len(tokenizer) and rows.shape == (len(batch.labels), 3)
    torch.testing.assert_close(rows, full[:, method.label_ids])


def test_symmetric_kl_matches_the_formula():
    """Eq. (7): KL(P||Q) + KL(Q||P) = sum_v P log(P/Q) + Q log(Q/P), batch mean."""
    torch.manual_seed(1)
    source, target = torch.randn(3, 9), torch.randn(3, 9)
    expected = 0.0
    for row in range(3):
        p = softmax(source[row].tolist())
        q = softmax(target[row].tolist())
        expected += sum(
            pv * math.log(pv / qv) + qv * math.log(qv / pv) for pv, qv in zip(p, q, strict=True)
        )
    actual = symmetric_kl(source, target)
    assert actual.item() == pytest.approx(expected / 3, rel=1e-5)
    assert symmetric_kl(target, source).item() == pytest.approx(actual.item(), rel=1e-6)
    assert symmetric_kl(source, source).item() == pytest.approx(0.0, abs=1e-7)


def test_total_loss_weighting():
    """Eq. (8)."""
    ce, kl = torch.tensor(2.0), torch.tensor(0.5)
    assert total_loss(ce, kl, 0.5).item() == pytest.approx(1.25)
    assert total_loss(ce, kl, 1.0).item() == pytest.approx(2.0)
    assert total_loss(ce, kl, 0.0).item() == pytest.approx(0.5)


@pytest.fixture(scope="module")
def task_data():
    return load_task_data(RunConfig(data="synthetic", aux_size=16, test_limit=8, shots=4))


def method_for(tokenizer, task_data, **values):
    torch.manual_seed(0)
    config = RunConfig(model="tiny", data="synthetic", aux_size=16, batch_size=8, **values)
    return build_method(config.resolved(), tokenizer, task_data)


def first_step(method):
    return next(method.training_batches(torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5])
def test_mpt_loss_is_the_weighted_sum(tokenizer, task_data, alpha):
    method = method_for(tokenizer, task_data, alpha=alpha)
    losses = method.loss(first_step(method))
    assert losses.kl is not None and losses.kl.item() > 0
    assert losses.total.item() == pytest.approx(
        alpha * losses.ce.item() + (1 - alpha) * losses.kl.item(), rel=1e-6
    )


def test_mpt_kl_term_compares_source_prompt_and_translated_prompt(tokenizer, task_data):
    method = method_for(tokenizer, task_data, alpha=0.5)
    step = first_step(method)
    _, aux_source, aux_target = step.split()
    method.model.eval()  # no dropout, so the recomputation below is exact
    expected = symmetric_kl(
        method.model(aux_source, method.model.source_prompt()),
        method.model(aux_target, method.model.translator(method.model.source_prompt())),
    )
    assert method.loss(step).kl.item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("method_name", ["mpt", "pct"])
def test_one_joined_pass_gives_the_losses_of_separate_passes(tokenizer, task_data, method_name):
    """The step's parts go through the encoder as one batch: without dropout the losses (and
    the gradients) equal those of one pass per part, each padded only to its own length."""
    method = method_for(tokenizer, task_data, method=method_name, alpha=0.3)
    method.model.eval()
    step = first_step(method)
    assert len(step.parts) == (3 if method_name == "mpt" else 2)
    separate = [trimmed(part) for part in step.split()]
    model = method.model
    if method_name == "mpt":
        english, aux_source, aux_target = separate
        prompt = model.source_prompt()
        ce = cross_entropy(model(english, prompt, method.label_ids), english.labels)
        kl = symmetric_kl(model(aux_source, prompt), model(aux_target, model.target_prompt()))
        expected = 0.3 * ce + 0.7 * kl
    else:
        english, foreign = separate
        targets = method.label_ids[english.labels]
        english_logits, foreign_logits = model(english), model(foreign)
        ce = cross_entropy(english_logits, targets) + cross_entropy(foreign_logits, targets)
        expected = ce + symmetric_kl(english_logits, foreign_logits)
    expected.backward()
    separate_grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad(set_to_none=True)
    losses = method.loss(step)
    losses.total.backward()
    joined_grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert losses.ce.item() == pytest.approx(ce.item(), rel=1e-5)
    assert losses.total.item() == pytest.approx(expected.item(), rel=1e-5)
    for joined, alone in zip(joined_grads, separate_grads, strict=True):
        torch.testing.assert_close(joined, alone, rtol=1e-4, atol=1e-6)


def trimmed(batch):
    """A part of a joined batch padded only to its own longest example."""
    length = int(batch.attention_mask.sum(-1).max())
    return dataclasses.replace(
        batch,
        input_ids=batch.input_ids[:, :length],
        attention_mask=batch.attention_mask[:, :length],
        token_type_ids=batch.token_type_ids[:, :length],
    )


def test_kl_gradients_reach_translator_and_prompt_encoder(tokenizer, task_data):
    method = method_for(tokenizer, task_data, alpha=0.0)  # the KL term alone
    method.loss(first_step(method)).total.backward()
    for module in (method.model.translator, method.model.prompt_encoder):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads)


def test_without_kl_the_translator_gets_no_gradient(tokenizer, task_data):
    method = method_for(tokenizer, task_data, alpha=1.0)
    step = first_step(method)
    assert len(step.parts) == 1  # no auxiliary batch at all
    full = method_for(tokenizer, task_data, alpha=0.5)
    assert len(full.aux_source) > len(full.train)  # the auxiliary stream sets the epoch
    assert method.steps_per_epoch == full.steps_per_epoch > 1
    method.loss(step).total.backward()
    assert all(p.grad is None for p in method.model.translator.parameters())
    assert all(p.grad.abs().sum() > 0 for p in method.model.prompt_encoder.parameters())


def test_a_separate_target_prompt_learns_from_the_kl_alone(tokenizer, task_data):
    method = method_for(tokenizer, task_data, translator="separate")
    model = method.model
    assert not torch.equal(model.target_prompt(), model.source_prompt())
    english, aux_source, aux_target = first_step(method).split()
    kl = symmetric_kl(
        model(aux_source, model.source_prompt().detach()),
        model(aux_target, model.target_prompt()),
    )
    kl.backward()
    assert all(p.grad.abs().sum() > 0 for p in model.translator.parameters())
    assert all(p.grad is None for p in model.prompt_encoder.parameters())  # p^T ignores p^S
    model.zero_grad(set_to_none=True)
    ce = cross_entropy(method.label_logits(english, model.source_prompt()), english.labels)
    ce.backward()  # CE: English only, with p^S
    assert all(p.grad is None for p in model.translator.parameters())


def test_sp_has_no_translator(tokenizer, task_data):
    method = method_for(tokenizer, task_data, method="sp")
    assert list(method.model.translator.parameters()) == []
    assert torch.equal(method.model.target_prompt(), method.model.source_prompt())


def test_inference_uses_target_prompt_for_target_languages(tokenizer, task_data):
    method = method_for(tokenizer, task_data)
    method.model.eval()
    seen = []
    method.model.register_forward_pre_hook(lambda model, args: seen.append(args[1]))
    batch = collate(method.encode(task_data.test["de"], "de"), method.pad_id)
    with torch.no_grad():
        source, target = method.model.source_prompt(), method.model.target_prompt()
        assert not torch.allclose(source, target)
        method.predict(batch, "de")
        method.predict(batch, "en")
    assert torch.equal(seen[0], target)  # p^T = Transl(p^S) for German
    assert torch.equal(seen[1], source)  # p^S for English, the source language


def test_prompt_written_into_input_embeddings(tokenizer, masked_lm):
    model = PromptedMaskedLM(masked_lm, prompt_length=4, translator="linear-2").eval()
    template = ClozeTemplate(tokenizer, 4, "midfix", 128)
    batch = collate(template.encode([Example("a b c", "d e"), Example("a", "b c d e f")]), 1)
    prompt = torch.randn(4, masked_lm.config.hidden_size)
    captured = {}
    hook = masked_lm.base_model.register_forward_pre_hook(
        lambda module, args, kwargs: captured.update(kwargs), with_kwargs=True
    )
    model(batch, prompt)
    hook.remove()
    embeds = captured["inputs_embeds"]
    words = masked_lm.get_input_embeddings()(batch.input_ids)
    for row in range(2):
        positions = batch.prompt_positions[row].tolist()
        assert torch.equal(embeds[row, positions], prompt)
        others = [i for i in range(batch.input_ids.shape[1]) if i not in positions]
        assert torch.equal(embeds[row, others], words[row, others])


def test_lm_head_at_mask_only_equals_full_logits(tokenizer, masked_lm):
    model = PromptedMaskedLM(masked_lm, prompt_length=4, translator="linear-2").eval()
    template = ClozeTemplate(tokenizer, 4, "suffix", 128)
    batch = collate(template.encode([Example("one two", "three"), Example("x", "y z w")]), 1)
    prompt = model.source_prompt()
    embeds = masked_lm.get_input_embeddings()(batch.input_ids).clone()
    for row in range(2):
        embeds[row, batch.prompt_positions[row]] = prompt
    full = masked_lm(inputs_embeds=embeds, attention_mask=batch.attention_mask).logits
    expected = full[torch.arange(2), batch.mask_positions]
    torch.testing.assert_close(model(batch, prompt), expected)


def test_pct_predicts_over_the_full_vocabulary(tokenizer, task_data):
    torch.manual_seed(0)
    config = RunConfig(method="pct", model="tiny", data="synthetic", batch_size=4).resolved()
    method = build_method(config, tokenizer, task_data)
    method.model.eval()
    batch = collate(method.encode(task_data.test["fr"], "fr"), method.pad_id)
    with torch.no_grad():
        words = method.model(batch).argmax(-1)
        predicted = method.predict(batch, "fr")
    label_ids = method.label_ids.tolist()
    for word, label in zip(words.tolist(), predicted.tolist(), strict=True):
        assert label == (label_ids.index(word) if word in label_ids else -1)
    step = next(method.training_batches(torch.Generator().manual_seed(0)))
    english, foreign = step.split()
    assert not torch.equal(english.input_ids, foreign.input_ids)  # a second, foreign template
    losses = method.loss(step)
    assert losses.total.item() == pytest.approx(losses.ce.item() + losses.kl.item(), rel=1e-6)


# XLM-R base's sizes (where a post-LN transformer translator started at 26x |p^S|) and tiny's
SIZES = [(768, 12), (64, 4)]


@pytest.mark.parametrize(("hidden", "heads"), SIZES)
@pytest.mark.parametrize("kind", list(TranslatorKind))
def test_every_translator_starts_at_the_scale_of_the_source_prompt(kind, hidden, heads):
    """Fig. 4 compares architectures: none of them starts far from |p^S| (a ratio between
    0.2 and 5 at initialisation), and the gradient of p^T reaches p^S through each but the
    separate prompt, which ignores p^S by design."""
    torch.manual_seed(0)
    prompt_encoder = PromptEncoder(4, hidden)
    translator = build_translator(kind, hidden, heads, prompt_length=4)
    source_prompt = prompt_encoder()
    source_prompt.retain_grad()
    target_prompt = translator(source_prompt)
    ratio = (target_prompt.norm() / source_prompt.norm()).item()
    assert 0.2 <= ratio <= 5, f"{kind}: |p^T| / |p^S| = {ratio:.2f} at initialisation"
    (target_prompt * torch.randn_like(target_prompt)).sum().backward()
    reaches_source = source_prompt.grad is not None and source_prompt.grad.abs().sum() > 0
    assert reaches_source == (kind is not TranslatorKind.SEPARATE)
    grads = [p.grad for p in translator.parameters()]
    assert kind is TranslatorKind.NONE or any(g is not None and g.abs().sum() > 0 for g in grads)

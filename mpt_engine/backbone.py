"""The pre-trained backbone: a masked LM (or a classifier for FT) and its tokenizer, from a hub id,
a local folder, or `tiny`: a randomly initialised XLM-R with a small tokenizer trained on the data
in use (offline, CPU, seconds).

Special tokens, the mask id and the sizes are read from the tokenizer and the model config, so
XLM-R base/large and mBERT all work.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

from mpt_engine import hub
from mpt_engine.config import TINY_MODEL
from mpt_engine.errors import InvalidInput, SourceUnavailable
from mpt_engine.paths import cache_dir
from mpt_engine.prompts import PCT_TEMPLATES, PCT_VERBALIZER, SOFT_PROMPT_VERBALIZER

TINY_SHAPE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
TINY_VOCAB = 4000
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


def load_tokenizer(model: str, corpus: Iterable[str] = ()):
    if model == TINY_MODEL:
        return tiny_tokenizer(corpus)
    from transformers import AutoTokenizer

    return load_pretrained(AutoTokenizer.from_pretrained, model)


def load_masked_lm(model: str, tokenizer):
    from transformers import AutoModelForMaskedLM, XLMRobertaForMaskedLM

    if model == TINY_MODEL:
        return XLMRobertaForMaskedLM(tiny_config(tokenizer))
    return load_pretrained(AutoModelForMaskedLM.from_pretrained, model)


def load_classifier(model: str, tokenizer, labels: int = 3):
    from transformers import AutoModelForSequenceClassification, XLMRobertaForSequenceClassification

    if model == TINY_MODEL:
        return XLMRobertaForSequenceClassification(tiny_config(tokenizer, num_labels=labels))
    return load_pretrained(
        AutoModelForSequenceClassification.from_pretrained, model, num_labels=labels
    )


def mask_head(masked_lm):
    """The module mapping hidden states to vocabulary logits (W_lh of Eq. 2)."""
    for name in ("lm_head", "cls"):  # XLM-R / RoBERTa, BERT / mBERT
        head = getattr(masked_lm, name, None)
        if head is not None:
            return head
    raise InvalidInput(f"unsupported masked LM {type(masked_lm).__name__}: no lm_head or cls head")


def tiny_config(tokenizer, **extra):
    from transformers import XLMRobertaConfig

    return XLMRobertaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        **TINY_SHAPE,
        **extra,
    )


def tiny_tokenizer(corpus: Iterable[str]):
    """A BPE tokenizer in XLM-R's format, trained on `corpus` and cached by its content."""
    from transformers import AutoTokenizer

    texts = [*corpus, *_template_words()]
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    folder = cache_dir() / "tokenizers" / f"tiny-{TINY_VOCAB}-{digest}"
    if not (folder / "tokenizer.json").exists():
        _train_tiny_tokenizer(texts).save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


def _template_words() -> list[str]:
    """Words the templates and verbalizers need as whole tokens, repeated so BPE keeps them."""
    words = [*SOFT_PROMPT_VERBALIZER.values(), *PCT_VERBALIZER.values(), ".", "?"]
    templates = [
        template.replace("<mask>", " ").replace("{}", " ") for template in PCT_TEMPLATES.values()
    ]
    return [" ".join(words)] * 50 + templates * 50


def _train_tiny_tokenizer(texts: list[str]):
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # XLM-R's ids 0..3, mask after them
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB, special_tokens=specials, limit_alphabet=1000, show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        cls_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
    )


def load_pretrained(loader, name: str, hint: str = hub.OFFLINE_HINT, **kwargs):
    """Load from a local folder, or from the hub (cache only when the hub is unreachable)."""
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")):
        if not (path / "config.json").is_file():
            raise InvalidInput(f"--model {name} is not a model folder (no config.json)")
        return _guarded(loader, str(path), name, hint, **kwargs)
    if not _HUB_ID.match(name):
        raise InvalidInput(f"--model {name!r} is neither a local folder nor a hub id")
    return _guarded(loader, name, name, hint, local_files_only=hub.offline(), **kwargs)


def _guarded(loader, source: str, name: str, hint: str, **kwargs):
    from transformers.utils import logging

    # The load report lists the heads we replace on purpose (FT's classifier); keep it quiet.
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        return loader(source, **kwargs)
    except OSError as error:
        if kwargs.get("local_files_only"):
            raise SourceUnavailable(
                f"model {name} is not in the local Hugging Face cache and the hub is unreachable; "
                f"{hint}"
            ) from None
        raise SourceUnavailable(f"cannot load model {name}: {error}") from None
    except (ValueError, KeyError) as error:
        raise InvalidInput(f"--model {name} cannot be loaded: {error}") from None

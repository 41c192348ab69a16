"""The pre-trained backbone: a masked LM (or a classifier for FT) and its tokenizer, from a hub id,
a local folder, or `tiny`: a randomly initialised XLM-R with a small tokenizer trained on the data
in use (offline, CPU, seconds).

Special tokens, the mask id and the sizes are read from the tokenizer and the model config, so
XLM-R base/large and mBERT all work.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from collections.abc import Iterable

import torch
import torch.nn.functional as F

from mpt_engine import hub
from mpt_engine.config import E5_REVISIONS, TINY_MODEL
from mpt_engine.errors import InvalidInput, SourceUnavailable
from mpt_engine.paths import cache_entry, cached
from mpt_engine.sources import local_model
from mpt_engine.tasks import Task, load_task

TINY_SHAPE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
TINY_VOCAB = 4000


def load_tokenizer(model: str, corpus: Iterable[str] = (), task: Task | None = None):
    """The model's tokenizer; for `tiny`, one trained on the run's texts and its task's words."""
    if model == TINY_MODEL:
        return tiny_tokenizer(corpus, task)
    from transformers import AutoTokenizer

    return load_pretrained(AutoTokenizer.from_pretrained, model)


def built_in_folder(model: str) -> str:
    """A built-in model's folder (e5-small is built on first use); any other name as it is."""
    if model not in E5_REVISIONS:
        return model
    from mpt_engine.e5small.build import ensure_built

    return str(ensure_built(model))


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


def encoder_inputs(
    model, embeddings: torch.Tensor, batch, prepared_mask: bool
) -> dict[str, torch.Tensor]:
    """The encoder's keyword arguments for a batch's input embeddings: its segments, and its
    attention mask. The host knows whether a batch has padding: without, there is no mask (on a
    GPU, flash attention); with, and `prepared_mask` (takes_prepared_masks), the mask is
    prepared here by transformers' own function for the model's attention implementation,
    without its check whether any token is padding (a `.all()`: on a GPU the host would wait
    for the device at every step); otherwise it is the 2-D mask."""
    mask = batch.attention_mask if batch.padded else None
    if prepared_mask and mask is not None:
        from transformers.masking_utils import create_bidirectional_mask

        mask = create_bidirectional_mask(
            config=model.config,
            inputs_embeds=embeddings,
            attention_mask=mask,
            allow_is_bidirectional_skip=False,
        )
    return {
        "inputs_embeds": embeddings,
        "attention_mask": mask,
        "token_type_ids": batch.token_type_ids,
    }


def takes_prepared_masks(model) -> bool:
    """Whether the model's code builds its masks with transformers.masking_utils, which passes
    a prepared (4-D) mask through (a model whose code predates it takes 2-D masks only)."""
    return hasattr(sys.modules[type(model).__module__], "create_bidirectional_mask")


class VocabularyHead:
    """W_lh of Eq. (2): the MLM head's feature transform, then the projection onto the
    vocabulary, which can be restricted to a few rows (the label words) so that a classifier
    never computes the 250,002 logits it does not need."""

    def __init__(self, masked_lm):
        self.projection = masked_lm.get_output_embeddings()
        lm_head, bert_head = getattr(masked_lm, "lm_head", None), getattr(masked_lm, "cls", None)
        if lm_head is not None and hasattr(lm_head, "dense") and hasattr(lm_head, "layer_norm"):
            # XLM-R / RoBERTa: layer_norm(gelu(dense(h)))
            self.transform = lambda hidden: lm_head.layer_norm(F.gelu(lm_head.dense(hidden)))
        elif bert_head is not None and hasattr(bert_head, "predictions"):
            self.transform = bert_head.predictions.transform  # BERT / mBERT
        else:
            raise InvalidInput(
                f"unsupported masked LM {type(masked_lm).__name__}: unknown MLM head"
            )

    def __call__(self, hidden: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Logits in float32 even under bf16 autocast: rounding them would blur the KL over
        the vocabulary and PCT's argmax, and at the mask alone the projection costs little."""
        features = self.transform(hidden).float()
        weight, bias = self.projection.weight, self.projection.bias
        if rows is not None:
            weight, bias = weight[rows], None if bias is None else bias[rows]
        with torch.autocast(features.device.type, enabled=False):
            return F.linear(features, weight.float(), None if bias is None else bias.float())


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


def tiny_tokenizer(corpus: Iterable[str], task: Task | None = None):
    """A BPE tokenizer in XLM-R's format, trained on `corpus` and cached by its content."""
    from transformers import AutoTokenizer

    texts = [*corpus, *_template_words(task or load_task())]
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    folder = cache_entry("tokenizers") / f"tiny-v2-{TINY_VOCAB}-{digest}"  # v2: reproducible
    return cached(
        folder,
        lambda partial: train_tokenizer(texts, TINY_VOCAB).save_pretrained(partial),
        AutoTokenizer.from_pretrained,
    )


def _template_words(task: Task) -> list[str]:
    """Words the task's templates and verbalizers need as whole tokens, repeated so BPE keeps
    them."""
    verbalizers = [task.verbalizer, *task.verbalizer_by_language.values(), task.pct_verbalizer]
    cloze = dict.fromkeys((task.cloze.after_first, task.cloze.after_second, task.cloze.after_mask))
    words = [*(word for words in verbalizers for word in words.values()), *cloze]
    templates = [
        template.replace("<mask>", " ").replace("{}", " ")
        for template in task.pct_templates.values()
    ]
    return [" ".join(words)] * 50 + templates * 50


def train_tokenizer(texts: list[str], vocab_size: int, limit_alphabet: int = 1000):
    """A BPE tokenizer in XLM-R's format (<s> A </s></s> B </s>, sentencepiece-style spaces)."""
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
    # The trainer breaks ties between equally frequent characters in hash order, which differs
    # from process to process; choosing the alphabet here makes the tokenizer reproducible.
    words = (
        word
        for text in texts
        for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(
            tokenizer.normalizer.normalize_str(text)
        )
    )
    counts = Counter(char for word in words for char in word)
    alphabet = sorted(counts, key=lambda char: (-counts[char], char))[:limit_alphabet]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=alphabet,
        limit_alphabet=len(alphabet),
        show_progress=False,
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


def load_pretrained(loader, name: str, hint: str = hub.MODEL_HINT, **kwargs):
    """Load from a local folder, or from the hub (cache only when the hub is unreachable)."""
    name = built_in_folder(name)
    folder = local_model(name)
    if folder is not None:
        return _guarded(loader, folder, name, hint, **kwargs)
    return _guarded(loader, name, name, hint, local_files_only=hub.offline(), **kwargs)


def _guarded(loader, source: str, name: str, hint: str, **kwargs):
    from safetensors import SafetensorError
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
    except SafetensorError as error:  # a truncated or corrupt weights file
        raise SourceUnavailable(f"cannot load model {name}: {error}") from None
    except (ValueError, KeyError) as error:
        raise InvalidInput(f"{{model}} {name} cannot be loaded: {error}", field="model") from None

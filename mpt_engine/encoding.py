"""Token-level mechanics shared by every template: special tokens, truncation, batching.

Texts are tokenised once without special tokens; templates are then assembled from token ids so
that truncation can only ever cut the premise and the hypothesis, never a template token, a
prompt slot or the mask.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from mpt_engine.errors import InvalidInput


@dataclass(frozen=True)
class Encoded:
    """One example, ready to batch."""

    input_ids: list[int]
    token_type_ids: list[int]
    label: int
    mask_position: int = -1  # index of <mask>; -1 for templates without one (FT)
    prompt_positions: tuple[int, ...] = ()  # indices of the soft-prompt slots, in order


class SpecialTokens:
    """Where a tokenizer puts its special tokens, read off probe encodings.

    XLM-R wraps a pair as `<s> A </s></s> B </s>`, BERT as `[CLS] A [SEP] B [SEP]` with segment
    ids; reading the layout from the tokenizer keeps every template model-agnostic.
    """

    def __init__(self, tokenizer) -> None:
        self.single = _layout(tokenizer("a"))
        self.pair = _layout(tokenizer("a", "b"))

    def wrap(self, *segments: list[int]) -> tuple[list[int], list[int], list[int]]:
        """Input ids, token type ids, and the offset at which each segment starts."""
        layout = self.single if len(segments) == 1 else self.pair
        ids: list[int] = []
        types: list[int] = []
        offsets: list[int] = []
        for kind, value, type_id in layout:
            if kind == "special":
                ids.append(value)
                types.append(type_id)
            else:
                offsets.append(len(ids))
                ids.extend(segments[value])
                types.extend([type_id] * len(segments[value]))
        return ids, types, offsets

    def count(self, segments: int) -> int:
        layout = self.single if segments == 1 else self.pair
        return sum(kind == "special" for kind, _, _ in layout)


def _layout(probe) -> list[tuple[str, int, int]]:
    ids = probe["input_ids"]
    types = probe.get("token_type_ids") or [0] * len(ids)
    layout: list[tuple[str, int, int]] = []
    for position, segment in enumerate(probe.sequence_ids()):
        if segment is None:
            layout.append(("special", ids[position], types[position]))
        elif not layout or layout[-1][:2] != ("segment", segment):
            layout.append(("segment", segment, types[position]))
    return layout


def truncate_pair(first: list[int], second: list[int], budget: int) -> tuple[list[int], list[int]]:
    """Longest-first truncation to `budget` tokens (transformers' `longest_first`, which PCT's
    code uses), as one-token-at-a-time cutting would do it: cut the longer part; on a tie, cut
    the second."""
    excess = _excess(first, second, budget)
    if excess <= 0:
        return first, second
    keep_first, keep_second = len(first), len(second)
    equalise = min(excess, abs(keep_first - keep_second))
    if keep_first > keep_second:
        keep_first -= equalise
    else:
        keep_second -= equalise
    rest = excess - equalise
    keep_first -= rest // 2
    keep_second -= rest - rest // 2
    return first[:keep_first], second[:keep_second]


def truncate_second_first(
    first: list[int], second: list[int], budget: int
) -> tuple[list[int], list[int]]:
    """xlmrprompt's rule for its one-segment cloze pattern (`PVP.truncate`, `_remove_last`):
    each cut takes the last token of the last part that still has one, so the hypothesis is
    emptied before the premise is cut."""
    excess = _excess(first, second, budget)
    if excess <= 0:
        return first, second
    cut_second = min(excess, len(second))
    return first[: len(first) - (excess - cut_second)], second[: len(second) - cut_second]


def _excess(first: list[int], second: list[int], budget: int) -> int:
    if budget < 2:
        raise InvalidInput(
            f"{{max_length}} leaves {budget} tokens for premise and hypothesis; "
            "raise {max_length}",
            field="max_length",
        )
    return len(first) + len(second) - budget


TENSORS = (
    "input_ids",
    "attention_mask",
    "token_type_ids",
    "labels",
    "mask_positions",
    "prompt_positions",
)


@dataclass
class Batch:
    """Padded examples; several batches of one step may be joined into one (one encoder pass
    instead of several: far fewer operations for the host to issue), `parts` giving their sizes
    in order."""

    input_ids: torch.Tensor  # (B, L)
    attention_mask: torch.Tensor  # (B, L)
    token_type_ids: torch.Tensor  # (B, L)
    labels: torch.Tensor  # (B,)
    mask_positions: torch.Tensor  # (B,)
    prompt_positions: torch.Tensor  # (B, m), m = 0 without a soft prompt
    parts: tuple[int, ...] = ()  # sizes of the joined batches; () for a single one
    padded: bool = True  # whether any example is padding (known when collated: no device read)
    lengths: tuple[int, ...] = ()  # each example's tokens, known on the host (collate)
    bucket: int = 1  # lengths are padded to multiples of this (bucketed: a compiled model's)

    def to(self, device: torch.device | str) -> Batch:
        """On a GPU the copy is asynchronous, from pinned memory: the host does not wait."""
        device = torch.device(device)
        if device.type == "cuda":
            moved = {name: getattr(self, name).pin_memory() for name in TENSORS}
            moved = {name: t.to(device, non_blocking=True) for name, t in moved.items()}
        else:
            moved = {name: getattr(self, name).to(device) for name in TENSORS}
        return dataclasses.replace(self, **moved)

    def bucketed(self, multiple: int, pad_id: int, limit: int) -> Batch:
        """Padded on to a multiple of `multiple` tokens (at most `limit`, or the batch's own
        length): a compiled model then meets a few shapes instead of one per length, and on a
        GPU records one CUDA graph per shape."""
        length = self.input_ids.shape[1]
        padded = max(length, min(-(-length // multiple) * multiple, limit))
        if padded == length:
            return self

        def pad(tensor: torch.Tensor, value: int) -> torch.Tensor:
            return torch.nn.functional.pad(tensor, (0, padded - length), value=value)

        return dataclasses.replace(
            self,
            padded=True,
            bucket=multiple,
            input_ids=pad(self.input_ids, pad_id),
            attention_mask=pad(self.attention_mask, 0),
            token_type_ids=pad(self.token_type_ids, 0),
        )

    def rows(self, indices: Sequence[int]) -> Batch:
        """Some of its examples, padded only to their own longest (rounded up to the bucket)."""
        longest = max(self.lengths[index] for index in indices)
        length = min(-(-longest // self.bucket) * self.bucket, self.input_ids.shape[1])
        chosen = torch.tensor(indices, device=self.input_ids.device)
        picked = {name: getattr(self, name)[chosen] for name in TENSORS}
        for name in ("input_ids", "attention_mask", "token_type_ids"):
            picked[name] = picked[name][:, :length]
        lengths = tuple(self.lengths[index] for index in indices)
        return Batch(**picked, padded=min(lengths) < length, lengths=lengths, bucket=self.bucket)

    def split(self) -> tuple[Batch, ...]:
        """The joined batches again (each keeps the joint padding)."""
        pieces = {name: getattr(self, name).split(list(self.parts)) for name in TENSORS}
        return tuple(
            Batch(**{name: pieces[name][index] for name in TENSORS})
            for index in range(len(self.parts))
        )


def collate(examples: Sequence[Encoded], pad_id: int) -> Batch:
    """Pad to the longest example of the batch (dynamic padding); one tensor per field."""
    length = max(len(example.input_ids) for example in examples)
    padding = [length - len(example.input_ids) for example in examples]
    return Batch(
        padded=any(padding),
        lengths=tuple(len(example.input_ids) for example in examples),
        input_ids=torch.tensor(
            [e.input_ids + [pad_id] * pad for e, pad in zip(examples, padding, strict=True)]
        ),
        attention_mask=torch.tensor(
            [[1] * len(e.input_ids) + [0] * pad for e, pad in zip(examples, padding, strict=True)]
        ),
        token_type_ids=torch.tensor(
            [e.token_type_ids + [0] * pad for e, pad in zip(examples, padding, strict=True)]
        ),
        labels=torch.tensor([example.label for example in examples]),
        mask_positions=torch.tensor([example.mask_position for example in examples]),
        prompt_positions=torch.tensor(
            [example.prompt_positions for example in examples], dtype=torch.long
        ).reshape(len(examples), -1),
    )


def join(parts: Sequence[Sequence[Encoded]], pad_id: int) -> Batch:
    """Several batches as one, padded to the longest example of all of them."""
    batch = collate([example for part in parts for example in part], pad_id)
    return dataclasses.replace(batch, parts=tuple(len(part) for part in parts))


def budget_batches(lengths: Sequence[int], tokens: int, size: float = math.inf) -> list[list[int]]:
    """Indices in ascending length, in batches of at most `size` examples and `tokens` padded
    tokens (an example longer than `tokens` makes a batch of its own)."""
    batches: list[list[int]] = []
    for index in sorted(range(len(lengths)), key=lambda index: lengths[index]):
        # ascending lengths: the newest example is its batch's longest
        fits = batches and (len(batches[-1]) + 1) * lengths[index] <= tokens
        if fits and len(batches[-1]) < size:
            batches[-1].append(index)
        else:
            batches.append([index])
    return batches


# What another encoder pass costs, in padded tokens' worth of work: on a CPU, whose time grows
# with every token, little (a few operations' overhead), so a step's rows run in groups of
# similar length; on a GPU, whose time grows with every launch, more than padding ever does.
GROUP_OVERHEAD = {"cuda": math.inf}
CPU_GROUP_OVERHEAD = 256
MAX_GROUPED_ROWS = 512  # the grouping's cost grows with rows squared


def length_groups(lengths: Sequence[int], overhead: float) -> list[list[int]]:
    """Row indices in groups of similar length that minimise the padded tokens plus `overhead`
    per group: the best cut of the length-sorted rows into runs (dynamic programming)."""
    order = sorted(range(len(lengths)), key=lambda index: lengths[index])
    cost = [0.0] + [math.inf] * len(order)
    start_of = [0] * (len(order) + 1)
    for end in range(1, len(order) + 1):
        longest = lengths[order[end - 1]]
        for start in range(end):
            total = cost[start] + (end - start) * longest + overhead
            if total < cost[end]:
                cost[end], start_of[end] = total, start
    groups, end = [], len(order)
    while end:
        groups.append(order[start_of[end] : end])
        end = start_of[end]
    return groups[::-1] or [order]


def in_length_groups(batch: Batch, encode: Callable[[Batch, list[int] | None], torch.Tensor]):
    """encode(part, rows) over groups of the batch's rows of similar length, each padded only
    to its own longest (`rows`: the part's row indices, None for the whole batch), its outputs
    (one row per example) joined in the batch's order. The rows are independent, so the result
    is the whole batch's (exactly, without dropout; in distribution with it)."""
    overhead = GROUP_OVERHEAD.get(batch.input_ids.device.type, CPU_GROUP_OVERHEAD)
    rows = len(batch.lengths)
    compiled = batch.bucket > 1  # a compiled model meets a few shapes, not one per group
    if not rows or rows > MAX_GROUPED_ROWS or overhead == math.inf or compiled:
        return encode(batch, None)
    groups = length_groups(batch.lengths, overhead)
    if len(groups) == 1:
        return encode(batch, None)
    joined = torch.cat([encode(batch.rows(group), group) for group in groups])
    position = {row: index for index, row in enumerate(r for group in groups for r in group)}
    back = torch.tensor([position[row] for row in range(rows)], device=joined.device)
    return joined[back]

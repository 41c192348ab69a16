"""A SentencePiece "precompiled charsmap" from a character map, for the `Precompiled` normaliser
of `tokenizers` (the normaliser of XLM-R's own tokenizer.json).

The format (sentencepiece normalizer.cc): u32 trie size in bytes | a darts-clone double array
whose keys are the UTF-8 bytes of a source character and whose values are offsets into | the
replacements, each ending in NUL. A double array stores each trie node's children at
`base XOR label`; a unit packs the label (low byte), a has-leaf flag (bit 8) and the XOR offset
to its children's base (bits 10..30); a leaf unit (bit 31 set) holds the value.
"""

from __future__ import annotations

import struct
from collections import deque

LEAF = 1 << 31
HAS_LEAF = 1 << 8
BLOCK = 256  # a XOR with a byte stays in its block of 256 units


def precompiled_charsmap(mapping: dict[str, str]) -> bytes:
    replacements = bytearray()
    values: dict[bytes, int] = {}
    for source in sorted(mapping):
        values[source.encode()] = len(replacements)
        replacements += mapping[source].encode() + b"\0"
    units = double_array(values)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(replacements)


def double_array(values: dict[bytes, int]) -> list[int]:
    """Units of a double array holding `values` (keys must not contain NUL)."""
    root: dict = {}
    for key, value in values.items():
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[None] = value  # the leaf, stored at the child labelled 0
    units = [0] * BLOCK
    used = bytearray(BLOCK)
    used[0] = 1
    bases: set[int] = set()
    queue = deque([(root, 0)])
    while queue:
        node, position = queue.popleft()
        labels = sorted(0 if label is None else label for label in node)
        base = _free_base(labels, used, bases)
        bases.add(base)
        while len(units) <= base | (BLOCK - 1):
            units.extend([0] * BLOCK)
            used.extend(bytes(BLOCK))
        units[position] |= _offset_bits(position ^ base)
        for label, child in node.items():
            slot = base ^ (0 if label is None else label)
            used[slot] = 1
            if label is None:
                units[position] |= HAS_LEAF
                units[slot] = child | LEAF
            else:
                units[slot] = label
                queue.append((child, slot))
    return units


def _free_base(labels: list[int], used: bytearray, bases: set[int]) -> int:
    """The first base whose slots for `labels` are all free (each base serves one node): try
    the free slots in order for the first label."""
    slot = used.find(0)
    while True:
        if slot < 0:
            slot = len(used)
        candidate = slot ^ labels[0]
        slots = [candidate ^ label for label in labels]
        free = all(s >= len(used) or not used[s] for s in slots)
        if free and candidate not in bases and 0 not in slots:
            return candidate
        slot = used.find(0, slot + 1) if slot < len(used) else slot + 1


def _offset_bits(offset: int) -> int:
    if offset >= 1 << 21:
        raise ValueError("double array too large for a short offset")
    return offset << 10

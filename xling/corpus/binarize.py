"""fairseq mmap indexed datasets written in pieces, never holding a corpus in memory.

The files are byte for byte what ``fairseq.data.indexed_dataset.MMapIndexedDatasetBuilder`` writes
(fairseq 0.12): ``.bin`` the items' ids back to back; ``.idx`` the magic ``MMIDIDX\\0\\0``, version 1,
the dtype code, the item count, the sizes (int32) and the byte offsets (int64). Written by hand so that
sizes and offsets stream from disk: fairseq's writer takes them as one Python list.
"""
from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import numpy as np

MAGIC = b"MMIDIDX\x00\x00"
DTYPE_CODE = {np.dtype(np.uint16): 8, np.dtype(np.uint32): 9, np.dtype(np.int32): 4, np.dtype(np.int64): 5}
STEP = 1 << 18  # items per read when streaming sizes


class Appender:
    """Binary files appended to in step, with a consistent size snapshot for resuming."""

    def __init__(self, paths: list[Path], sizes: list[int] | None = None):
        self.paths = paths
        if sizes is not None:  # resume: cut every file back to its last checkpointed size
            for p, n in zip(paths, sizes):
                with open(p, "r+b") as f:
                    f.truncate(n)
        self.files = [open(p, "ab") for p in paths]

    def write(self, i: int, data) -> None:
        f = self.files[i]
        if isinstance(data, np.ndarray):
            data.tofile(f)
        else:
            f.write(data)

    def checkpoint(self) -> list[int]:
        for f in self.files:
            f.flush()
            os.fsync(f.fileno())
        return [f.tell() for f in self.files]

    def close(self) -> None:
        for f in self.files:
            f.close()


def write_index(idx_path: Path, sizes_path: Path, dtype) -> None:
    """``.idx`` from a file of int32 sizes, in steps of :data:`STEP` items."""
    dtype = np.dtype(dtype)
    n = os.path.getsize(sizes_path) // 4
    with open(idx_path, "wb") as out:
        out.write(MAGIC + struct.pack("<Q", 1) + struct.pack("<B", DTYPE_CODE[dtype]) + struct.pack("<Q", n))
        with open(sizes_path, "rb") as f:
            shutil.copyfileobj(f, out)
        address = 0
        with open(sizes_path, "rb") as f:
            while True:
                s = np.fromfile(f, dtype=np.int32, count=STEP)
                if not len(s):
                    break
                starts = np.empty(len(s), dtype=np.int64)  # byte offset of each item: exclusive cumsum
                starts[0] = address
                np.cumsum(s[:-1], dtype=np.int64, out=starts[1:])
                starts[1:] *= dtype.itemsize
                starts[1:] += address
                starts.tofile(out)
                address = int(starts[-1]) + int(s[-1]) * dtype.itemsize


def read_sizes(idx_path: Path) -> np.ndarray:
    with open(idx_path, "rb") as f:
        head = f.read(len(MAGIC) + 17)
        n = struct.unpack("<Q", head[-8:])[0]
        return np.fromfile(f, dtype=np.int32, count=n)


class DatasetWriter:
    """One output dataset ``PREFIX.bin/.idx/.txt`` (+ ``.align`` with alignments), filled item by item."""

    def __init__(self, prefix: Path, dtype, align: bool = False):
        prefix.parent.mkdir(parents=True, exist_ok=True)
        self.prefix, self.dtype = prefix, np.dtype(dtype)
        self.bin = open(f"{prefix}.bin", "wb")
        self.sizes = open(f"{prefix}.sizes.tmp", "wb")
        self.txt = open(f"{prefix}.txt", "wb")
        self.items = self.tokens = 0

    def add(self, sizes: np.ndarray, ids: np.ndarray, texts: bytes) -> None:
        sizes.astype(np.int32).tofile(self.sizes)
        ids.astype(self.dtype, copy=False).tofile(self.bin)
        self.txt.write(texts)
        self.items += len(sizes)
        self.tokens += int(ids.size)

    def close(self) -> None:
        for f in (self.bin, self.sizes, self.txt):
            f.close()
        write_index(Path(f"{self.prefix}.idx"), Path(f"{self.prefix}.sizes.tmp"), self.dtype)
        os.unlink(f"{self.prefix}.sizes.tmp")


def concat_datasets(parts: list[Path], out: Path, dtype) -> tuple[int, int]:
    """Concatenate datasets ``parts`` (prefixes) into ``out``; returns (items, tokens)."""
    w = DatasetWriter(out, dtype)
    for p in parts:
        sizes = read_sizes(Path(f"{p}.idx"))
        ids = np.fromfile(f"{p}.bin", dtype=w.dtype)
        w.add(sizes, ids, Path(f"{p}.txt").read_bytes())
    w.close()
    return w.items, w.tokens


def dataset_files(prefix: str) -> list[str]:
    return [f"{prefix}.{e}" for e in ("bin", "idx", "txt")]

"""Text -> fairseq ids with the shared SentencePiece model, consistent with ``dict.txt``.

``fairseq id = spm id + 1`` (spm ``<unk>`` 0 -> fairseq ``<unk>`` 3), each sentence followed by
``</s>`` (2): what ``fairseq-preprocess --srcdict dict.txt`` writes for the spm-encoded text. The id
mapping replaces ``Dictionary.encode_line`` for speed; ``dict.txt`` is checked against the model at start.
"""
from __future__ import annotations

from itertools import chain
from pathlib import Path

import numpy as np

from xling.io import check_file
from xling.vocab import check_dict_matches_spm


def token_dtype(dict_size: int):
    """The item dtype fairseq's mmap builder picks for a dictionary (``best_fitting_int_dtype``)."""
    return np.uint16 if dict_size < 65500 else np.uint32


class TextEncoder:
    """spm text -> fairseq ids (+ ``</s>``), and back."""

    def __init__(self, vocab_dir: str | Path, num_threads: int = 1, check: bool = True):
        import sentencepiece as spm

        vocab_dir = Path(vocab_dir)
        self.spm_path = vocab_dir / "spm.model"
        self.dict_path = vocab_dir / "dict.txt"
        check_file(self.spm_path, "vocabulary's spm.model")
        check_file(self.dict_path, "vocabulary's dict.txt")
        self.sp = spm.SentencePieceProcessor(model_file=str(self.spm_path))
        self.dict_size = (check_dict_matches_spm(self.dict_path, self.spm_path) if check
                          else self.sp.get_piece_size() + 1)
        self.dtype = token_dtype(self.dict_size)
        self.num_threads = num_threads
        lut = np.arange(self.sp.get_piece_size(), dtype=np.int64) + 1
        lut[0] = 3  # spm <unk> -> fairseq <unk>
        lut[2] = 2  # spm </s> (appended by add_eos) -> fairseq </s>
        self._lut = lut.astype(self.dtype)

    def encode_flat(self, lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(sizes int32 incl. ``</s>``, all ids concatenated in the dataset's dtype)."""
        ids = self.sp.encode(lines, add_eos=True, num_threads=self.num_threads)
        sizes = np.fromiter(map(len, ids), dtype=np.int32, count=len(ids))
        flat = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(sizes.sum()))
        return sizes, self._lut[flat]

    def encode(self, lines: list[str]) -> list[np.ndarray]:
        sizes, flat = self.encode_flat(lines)
        return [a.astype(np.int64) for a in np.split(flat, np.cumsum(sizes)[:-1])] if lines else []

    def decode(self, fairseq_ids) -> str:
        ids = [int(i) - 1 if int(i) != 3 else 0 for i in fairseq_ids if int(i) != 2]
        return self.sp.decode(ids)

"""Tokenizing and numbering text for eflomal, a block of lines at a time, vectorised with numpy.

One side of a block is joined into one string, lowercased and split on whitespace in single C calls;
the words of each line are counted from the text's code points, each *distinct* whitespace token is
tokenized and numbered once (the unicode tokenizer never joins across spaces, so a token splits the
same way wherever it occurs), and the numbered file is written with one join over a table of number
strings. Per-line Python (a split, a list of numbers and an f-string for every sentence) cost most
of an alignment run's own time before eflomal's sampling.

Written by hand: eflomal's numeric input format has no writer outside eflomal-align's Cython module
(which we do not import: GPLv3), and the vectorised splitting is specific to this format.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from xling.align.tokenize import tokenize

MAX_LEN = 0x400  # eflomal's MAX_SENT_LEN: a side this long or longer is written empty (the pair gets no links)
_HEADER_WIDTH = 48
# the code points Python's str.split() splits on
_SPACE = [*range(0x09, 0x0E), *range(0x1C, 0x21), 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029,
          0x202F, 0x205F, 0x3000]
_IS_SPACE = np.zeros(0x3001, bool)
_IS_SPACE[_SPACE] = True
_LEN_STR = np.array([f"{n} " for n in range(MAX_LEN)], dtype=object)


def tokens_per_line(text: str, n_lines: int) -> np.ndarray:
    """``len(line.split())`` of every line of ``"\\n".join(lines)``, from the code points at once."""
    cp = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    space = np.zeros(len(cp), bool)
    low = cp < len(_IS_SPACE)
    space[low] = _IS_SPACE[cp[low]]
    start = ~space
    start[1:] &= space[:-1]
    ends = np.flatnonzero(cp == 10)
    if len(ends) != n_lines - 1:
        raise ValueError("a line holds a line feed")
    edges = np.concatenate(([0], np.searchsorted(np.flatnonzero(start), ends), [int(start.sum())]))
    return np.diff(edges)


def numbered_lines(lengths: np.ndarray, items: np.ndarray, table: np.ndarray, with_length: bool) -> str:
    """Text of lines of ``table[items]`` (strings ending in a space), ``lengths[k]`` items on line ``k``,
    each line prefixed with its length when ``with_length`` (eflomal's format; fscanf skips the spaces)."""
    n = len(lengths)
    lead = 1 if with_length else 0
    before = np.zeros(n, np.int64)
    np.cumsum(lengths[:-1], out=before[1:])
    slot0 = before + (1 + lead) * np.arange(n)  # first slot of each line
    out = np.full(len(items) + (1 + lead) * n, "\n", dtype=object)
    if with_length:
        out[slot0] = _LEN_STR[lengths]
    line = np.repeat(np.arange(n), lengths)
    out[np.arange(len(items)) + (1 + lead) * line + lead] = table[items]
    return "".join(out.tolist())


class _Numbers(dict):
    """Key -> number in order of first look-up; with ``track``, keys seen for the first time are collected
    in ``new``."""

    def __init__(self, track: bool = False):
        super().__init__()
        self.new: list[str] | None = [] if track else None

    def __missing__(self, key: str) -> int:
        num = self[key] = len(self)
        if self.new is not None:
            self.new.append(key)
        return num


class _Table:
    """A growing int64 table filled from Python lists, read as a numpy array (capacity doubles)."""

    def __init__(self):
        self._a, self.n = np.zeros(1024, np.int64), 0

    def extend(self, values: list[int]) -> None:
        if self.n + len(values) > len(self._a):
            self._a = np.concatenate((self._a, np.zeros(max(len(self._a), len(values)), np.int64)))
        self._a[self.n:self.n + len(values)] = values
        self.n += len(values)

    def np(self) -> np.ndarray:
        return self._a[:self.n]


class SideNumbering:
    """Word numbers of one side of one eflomal run, and its numbered file.

    ``vocab`` maps a word to its number. Each whitespace token maps to the numbers of its words
    (``tokenize(token)``: one word for pre-tokenized input, several for e.g. a Chinese word that the
    unicode tokenizer writes as characters) through ``tok_first``/``tok_count`` into ``tok_words``."""

    def __init__(self, path: Path, tokenizer: str):
        self.path, self.tokenizer = path, tokenizer
        self.vocab = _Numbers()
        self._tokens = _Numbers(track=True)
        self.tok_first, self.tok_count, self.tok_words = _Table(), _Table(), _Table()
        self._strs = np.zeros(0, dtype=object)  # "k " for word number k
        self.n = self.tokens = 0
        self._f = open(path, "w", encoding="ascii")
        self._f.write(" " * _HEADER_WIDTH + "\n")  # patched in close(): fscanf skips the padding

    def _token_ids(self, toks: list[str]) -> np.ndarray:
        tokens = self._tokens
        ids = np.fromiter(map(tokens.__getitem__, toks), np.int64, len(toks))
        if tokens.new:  # distinct tokens not seen before: number their words
            num = self.vocab.__getitem__
            split = (lambda t: [t]) if self.tokenizer == "whitespace" else (lambda t: tokenize(t, self.tokenizer))
            words = list(map(split, tokens.new))
            counts = list(map(len, words))
            self.tok_first.extend((self.tok_words.n + np.cumsum([0] + counts[:-1])).tolist())
            self.tok_count.extend(counts)
            self.tok_words.extend([num(w) for ws in words for w in ws])
            tokens.new.clear()
        return ids

    def split(self, lines: list[str], lowercase: bool, owners: bool) -> tuple:
        """Words of a block of lines: ``(tokens per line, words per line, word numbers, owners)``. ``owners``:
        ``None`` if every word is a whole whitespace token, else per line whether any token split, and
        per word of those lines the index of its whitespace token in the line and the line."""
        text = "\n".join(lines)
        if lowercase:
            text = text.lower()
        toks = text.split()
        try:
            per_tok = tokens_per_line(text, len(lines)) if lines else np.zeros(0, np.int64)
        except ValueError:  # a line with a line feed in it (in-memory input): count line by line
            per_tok = np.array([len(ln.split()) for ln in lines], np.int64)
        tid = self._token_ids(toks)
        count = self.tok_count.np()[tid]
        first = self.tok_first.np()[tid]
        line_of_tok = np.repeat(np.arange(len(lines)), per_tok)
        if (count == 1).all():
            return per_tok, per_tok, self.tok_words.np()[first], None
        n_words = np.bincount(line_of_tok, weights=count, minlength=len(lines)).astype(np.int64)
        before = np.cumsum(count) - count
        at = np.repeat(first - before, count) + np.arange(int(count.sum()))
        wid = self.tok_words.np()[at]
        if not owners:
            return per_tok, n_words, wid, None
        split_line = np.bincount(line_of_tok, weights=count != 1, minlength=len(lines)) > 0
        tok0 = np.cumsum(per_tok) - per_tok
        pos = np.arange(len(toks)) - np.repeat(tok0, per_tok)  # index of each token in its line
        word_line = np.repeat(line_of_tok, count)
        keep = split_line[word_line]
        return per_tok, n_words, wid, (split_line, np.repeat(pos, count)[keep], word_line[keep])

    def write(self, lengths: np.ndarray, wid: np.ndarray) -> None:
        """Append lines of ``lengths[k]`` word numbers (from ``wid``, in order); 0 is an empty line."""
        if len(self._strs) < len(self.vocab):
            grow = max(len(self.vocab), 2 * len(self._strs), 1024)
            self._strs = np.concatenate((self._strs, np.array([f"{k} " for k in range(len(self._strs), grow)],
                                                             dtype=object)))
        self._f.write(numbered_lines(lengths, wid, self._strs, True))
        self.n += len(lengths)
        self.tokens += len(wid)

    def words_text(self, lengths: np.ndarray, wid: np.ndarray) -> str:
        """The words as text, one line per sentence (for eflomal-makepriors)."""
        table = np.array([w + " " for w in self.vocab], dtype=object)
        return numbered_lines(lengths, wid, table, False)

    def close(self) -> None:
        self._f.seek(0)
        self._f.write(f"{self.n} {len(self.vocab)}".ljust(_HEADER_WIDTH))
        self._f.close()

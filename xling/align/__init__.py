"""Word alignment of parallel text: eflomal (run as a separate program) + our symmetrization.

Public API: :class:`Aligner` (the constructor holds the options), :func:`align_lines` (in-memory
pairs, as prep-data uses), :func:`align_files` (streaming files to Pharaoh), :func:`align_cached`
(the same, skipped when up to date), :func:`read_pharaoh` / :func:`write_pharaoh`,
:func:`score_files`, :func:`word_to_piece_alignment`, :func:`eflomal_available`.
"""
from xling.align.cache import align_cached
from xling.align.eflomal import eflomal_available, find_eflomal
from xling.align.engine import Aligner, align_files, align_lines
from xling.align.links import Alignments
from xling.align.options import PRESETS
from xling.align.pharaoh import format_links, read_pharaoh, write_pharaoh
from xling.align.pieces import word_to_piece_alignment
from xling.align.score import score_alignments, score_files

__all__ = ["Aligner", "Alignments", "PRESETS", "align_cached", "align_files", "align_lines", "eflomal_available",
           "find_eflomal", "format_links", "read_pharaoh", "write_pharaoh", "score_alignments", "score_files",
           "word_to_piece_alignment"]

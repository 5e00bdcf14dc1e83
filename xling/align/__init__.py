"""Word alignment of parallel text: eflomal (run as a separate process) + our symmetrization.

Public API: :func:`align_lines`, :func:`write_pharaoh`, :func:`read_pharaoh`, :func:`score_files`,
:func:`word_to_piece_alignment`.
"""
from xling.align.engine import align_lines, align_files
from xling.align.pharaoh import read_pharaoh, write_pharaoh, format_links
from xling.align.score import score_alignments, score_files
from xling.align.pieces import word_to_piece_alignment

__all__ = ["align_lines", "align_files", "read_pharaoh", "write_pharaoh", "format_links",
           "score_alignments", "score_files", "word_to_piece_alignment"]

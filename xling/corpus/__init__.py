"""Corpus preparation into fairseq binary datasets (``xling prep-data``), in bounded memory.

Stages, one module each: :mod:`.config` (what to do), :mod:`.reader` (validated, chunked input),
:mod:`.clean` (cleaning rules and line hashes), :mod:`.textenc` (text -> fairseq ids),
:mod:`.work` (one chunk in a worker process), :mod:`.stream` (a corpus through the workers, resumable),
:mod:`.dedup` (exact dedup on disk), :mod:`.split` (filters, valid split, shards), :mod:`.binarize`
(mmap datasets), :mod:`.manifest` (the layout that pretraining reads), :mod:`.prepare` and
:mod:`.merge` (the front: ``prepare_data``, ``merge_parts``).
"""
from xling.corpus.clean import clean_line
from xling.corpus.config import SPLITS, DataConfig, ParaInput, parse_pair, parse_shard
from xling.corpus.manifest import fairseq_data_arg, load_manifest, shard_dirs
from xling.corpus.prepare import DataResult, prepare_data
from xling.corpus.textenc import TextEncoder

__all__ = ["SPLITS", "DataConfig", "DataResult", "ParaInput", "TextEncoder", "clean_line", "fairseq_data_arg",
           "load_manifest", "parse_pair", "parse_shard", "prepare_data", "shard_dirs"]

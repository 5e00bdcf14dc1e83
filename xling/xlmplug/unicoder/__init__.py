"""Datasets of the Unicoder-style objectives (Huang et al., EMNLP 2019; InfoXLM's contrast).

One module per kind of example: ``pairs`` (the two sides of a translation pair encoded apart, for
clwr and xlco; packed positive/negative pairs for clpc), ``documents`` (clmlm's mixed-language
documents), ``codeswitch`` (cs-mlm's alignment-driven code-switching), and ``multi`` (one update's
batch holding a sub-batch per objective); ``builders`` holds each objective's data builder, named by the
registry :mod:`xling.xlmplug.objectives`.
"""

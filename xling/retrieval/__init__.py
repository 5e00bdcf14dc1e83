"""Cross-lingual sentence retrieval without fine-tuning: Tatoeba top-1 accuracy and BUCC-style bitext
mining from any layer of an xling model directory (``xling eval retrieval``).

Modules: :mod:`tasks` (declarative task specs and their file layouts), :mod:`embed` (batched
encoding, every layer in one pass, mean/cls pooling), :mod:`similarity` (cosine and ratio margin),
:mod:`mining` (BUCC candidates, best-threshold F1), :mod:`run` (the runner and its output directory),
:mod:`report` (tables).
"""

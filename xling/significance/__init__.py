"""Significance between two evaluation runs (``xling eval compare``): paired bootstrap over test examples
and seeds (:mod:`bootstrap`), per-example statistics of the XGLUE metrics (:mod:`examples`, :mod:`bleu`),
run directories (:mod:`runs`), the comparison and its table (:mod:`compare`)."""

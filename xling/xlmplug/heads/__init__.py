"""Heads of the pretraining objectives: plain ``nn.Module``s owned by criterion ``xling_unicoder``.

One head a file: ``clwr`` (bilinear attention of X over Y's states), ``clpc`` (pair classifier), ``xlco``
(contrast projection and key queue). Each has ``build(cfg, dim, dictionary)`` (``cfg``: the criterion's
config, which subclasses every head's config) and ``loss(model, sample) -> (summed loss, count, stats)``
on its objective's sub-batch, where ``stats`` may hold ``correct`` (for the accuracy logs). They are
criterion parameters, so the checkpoint's ``model`` entry stays the plain encoder; the registry
(:mod:`xling.xlmplug.objectives`) says which objective uses which head.
"""

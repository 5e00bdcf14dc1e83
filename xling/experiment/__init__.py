"""Experiments: named stages of xling commands with their options and dependencies, run in order by
``xling run EXPERIMENT.yaml`` (:mod:`~xling.experiment.spec` reads the file, :mod:`~xling.experiment.plan`
turns it into commands and tracks each stage's state, :mod:`~xling.experiment.local` runs them here;
:mod:`~xling.experiment.models` and :mod:`~xling.experiment.curves` evaluate several checkpoints of a
pretraining run)."""

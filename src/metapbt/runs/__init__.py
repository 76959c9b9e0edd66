"""Runs: a run configuration resolved once, trained alone or in a batch, and its files.

:mod:`~metapbt.runs.config` (what a run is), :mod:`~metapbt.runs.resolve` (the run resolved
once into everything it needs), :mod:`~metapbt.runs.batch` (runs trained together),
:mod:`~metapbt.runs.run` (a batch of one), :mod:`~metapbt.runs.checkpoint` and
:mod:`~metapbt.runs.outputs` (its files). Above :mod:`metapbt.engine` (PPO, networks,
trainers), below :mod:`metapbt.studies`.
"""

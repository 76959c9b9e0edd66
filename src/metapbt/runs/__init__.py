"""Runs: a run configuration resolved once, trained alone or in a batch, and its files.

[`config`][metapbt.runs.config] (what a run is), [`resolve`][metapbt.runs.resolve] (the run resolved
once into everything it needs), `batch` (runs trained together), `resume` (which runs resume
and which train together), [`run`][metapbt.runs.run] (a batch of one), `checkpoint` and
`outputs` (its files). Above `metapbt.engine` (PPO, networks,
trainers), below `metapbt.studies`.
"""

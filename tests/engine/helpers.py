"""Helpers shared by the engine tests."""

import jax
import numpy as np

from metapbt.population.portfolio import Candidate, Portfolio, ScoreMatrix
from metapbt.population.space import default_space


def configs(lrs):
    """One config per member, differing only in ``lr``."""
    return [{"lr": lr, "lambda": 0.95, "clip": 0.2} for lr in lrs]


def leaves(tree, member):
    """Every leaf of ``tree`` for one member, as numpy arrays."""
    return [np.asarray(x[member]) for x in jax.tree.leaves(tree)]


def same_member(a, b, member):
    """Whether two states hold identical parameters for ``member``."""
    return all(
        np.array_equal(x, y) for x, y in zip(leaves(a, member), leaves(b, member), strict=True)
    )


def portfolio_file(tmp_path, tasks, preset="fast"):
    space = default_space()
    candidates = tuple(
        Candidate({"lr": 1e-4 * (i + 1), "lambda": 0.95, "clip": 0.2}, task)
        for i, task in enumerate(tasks)
    )
    matrix = ScoreMatrix(candidates, tuple(tasks), np.eye(len(tasks)))
    provenance = {"env": "cart_pole", "preset": preset, "steps": 4000, "seeds": 1, "configs": 2}
    return Portfolio(space, candidates, matrix, None, provenance).save(tmp_path / "p.json")

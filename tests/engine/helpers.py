"""Helpers shared by the engine tests."""

import jax
import numpy as np

from metapbt.engine import presets
from metapbt.population.portfolio import Candidate, Portfolio, ScoreMatrix
from metapbt.population.space import default_space


def tiny(**overrides):
    """A ``fast`` preset small enough for tests (batch 128, 2 epochs of 2 minibatches).

    4 environments x 32 steps, one hidden layer of 16, 2 evaluation episodes; ``overrides``
    change any field.
    """
    settings = dict(
        num_envs=4, rollout_len=32, epochs=2, minibatch_size=64, hidden=(16,), eval_episodes=2
    )
    return presets.make("fast", **{**settings, **overrides})


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

"""Helpers shared by the trainer tests."""

import jax
import numpy as np


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

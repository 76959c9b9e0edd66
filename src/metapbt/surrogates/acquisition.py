"""Acquisition functions: elementwise formulas, and the pytrees the explorers maximise.

The formulas (`ucb`, `ucb_variance`, `expected_improvement`) act on mean and
variance arrays. The acquisition pytrees (`UCB`, `ExpectedImprovement`,
`TransferAcquisition`) read a `Posterior` at inputs
``x [q, D]``; `acquisition_objective` is the one module-level objective every explorer
hands to `maximize_unit_box`, so the compiled optimiser is
keyed by the acquisition's type, not by a function per explorer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import jax
import jax.numpy as jnp

from metapbt.surrogates.posterior import Posterior, posterior_predict
from metapbt.surrogates.transfer import MetaTerms, meta_means

_MIN_STD = 1e-9


def ucb_kappa(n_rows: int, exploration: float = 0.2, growth: float = 0.4) -> float:
    """PB2's exploration weight ``sqrt(exploration + max(0, ln(growth * n_rows)))``."""
    return (
        math.sqrt(exploration + max(0.0, math.log(growth * n_rows)))
        if n_rows > 0
        else math.sqrt(exploration)
    )


def ucb(mean: jax.Array, var: jax.Array, kappa: jax.Array | float) -> jax.Array:
    """Upper confidence bound ``mean + kappa * std``."""
    return mean + kappa * jnp.sqrt(jnp.maximum(var, _MIN_STD**2))


def ucb_variance(mean: jax.Array, var: jax.Array, kappa: jax.Array | float) -> jax.Array:
    """Ray PB2's UCB, which adds the *variance*: ``mean + kappa * var`` (kept for stock PB2)."""
    return mean + kappa * var


def expected_improvement(
    mean: jax.Array, var: jax.Array, best: jax.Array | float, xi: float = 0.0
) -> jax.Array:
    """Expected improvement over ``best`` (maximisation); zero where the variance vanishes.

    The reference's EI had no guard for ``std = 0`` and returned NaN there (weakness 9).
    """
    std = jnp.sqrt(jnp.maximum(var, 0.0))
    safe = jnp.maximum(std, _MIN_STD)
    gap = mean - best - xi
    z = gap / safe
    value = gap * jax.scipy.stats.norm.cdf(z) + safe * jax.scipy.stats.norm.pdf(z)
    return jnp.where(std > _MIN_STD, jnp.maximum(value, 0.0), jnp.maximum(gap, 0.0))


class Acquisition(Protocol):
    """An acquisition pytree: its value at every row of ``x [q, D]`` under ``post``."""

    def __call__(self, post: Posterior, x: jax.Array) -> jax.Array:
        """``[q]`` values at ``x [q, D]``."""
        ...


@partial(jax.tree_util.register_dataclass, data_fields=["kappa", "std_weight"], meta_fields=[])
@dataclass(frozen=True)
class UCB:
    """``mean + kappa * std`` (``std_weight = 1``, PB2*) or ``mean + kappa * var`` (``0``, Ray)."""

    kappa: jax.Array
    std_weight: jax.Array

    @classmethod
    def of(cls, kappa: float, std: bool = True) -> UCB:
        """A UCB with a fixed ``kappa``, adding the standard deviation or the variance."""
        return cls(jnp.asarray(kappa, jnp.float32), jnp.asarray(1.0 if std else 0.0, jnp.float32))

    def __call__(self, post: Posterior, x: jax.Array) -> jax.Array:  # noqa: D102
        mean, var = posterior_predict(post, x)
        return jnp.where(
            self.std_weight > 0, ucb(mean, var, self.kappa), ucb_variance(mean, var, self.kappa)
        )


@partial(jax.tree_util.register_dataclass, data_fields=["best"], meta_fields=[])
@dataclass(frozen=True)
class ExpectedImprovement:
    """Expected improvement over ``best``."""

    best: jax.Array

    def __call__(self, post: Posterior, x: jax.Array) -> jax.Array:  # noqa: D102
        mean, var = posterior_predict(post, x)
        return expected_improvement(mean, var, self.best)


@partial(
    jax.tree_util.register_dataclass,
    data_fields=["best", "target_weight", "meta", "meta_best"],
    meta_fields=[],
)
@dataclass(frozen=True)
class TransferAcquisition:
    """TAF: ``w_t * EI(x) + sum_i w_i * max(0, mean_i(x) - best_i)``.

    Attributes:
        best: The target's best (standardised) observation, for EI.
        target_weight: The target model's RGPE weight ``w_t``.
        meta: The meta-task models, their weights ``w_i`` and scalings.
        meta_best: ``[M]`` each meta model's best prediction at the target's observed inputs.
    """

    best: jax.Array
    target_weight: jax.Array
    meta: MetaTerms
    meta_best: jax.Array

    def __call__(self, post: Posterior, x: jax.Array) -> jax.Array:  # noqa: D102
        mean, var = posterior_predict(post, x)
        ei = expected_improvement(mean, var, self.best)
        gains = jnp.maximum(meta_means(self.meta, x) - self.meta_best[:, None], 0.0)
        return self.target_weight * ei + self.meta.weights @ gains


def acquisition_objective(
    args: tuple[Acquisition, Posterior, jax.Array], u: jax.Array
) -> jax.Array:
    """The value at ``x = (fixed, u)`` of ``args = (acquisition, posterior, fixed)``.

    ``fixed`` holds the query's leading columns (task index, time, reward); ``u [d]`` the
    hyperparameters in the unit cube.
    """
    acquisition, post, fixed = args
    x = jnp.concatenate([fixed, u])[None, :]
    return acquisition(post, x)[0]


def boxed_objective(
    args: tuple[tuple[Acquisition, Posterior, jax.Array], jax.Array, jax.Array], v: jax.Array
) -> jax.Array:
    """`acquisition_objective` on the box ``[low, high]``, in unit coordinates ``v``.

    ``u = low + v (high - low)``: a trust region's picks; ``args = (inner, low, high)``.
    """
    inner, low, high = args
    return acquisition_objective(inner, low + v * (high - low))

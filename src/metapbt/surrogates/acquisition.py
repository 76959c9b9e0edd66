"""Acquisition functions (pure, elementwise over mean and variance arrays)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

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

"""Constrained hyperparameters of surrogate models, optimised in an unconstrained space.

A model keeps *raw* (unconstrained) values; `Bounded` and `Positive` map them to
the constrained values the kernel uses. Gradients flow through the maps, so box constraints
hold by construction and no parameter is ever clipped after fitting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from metapbt.errors import ConfigError

Value = float | Sequence[float] | np.ndarray
"""A constrained hyperparameter's value: a number, or a vector's values (a list or an array)."""


@dataclass(frozen=True)
class Bounded:
    """A parameter in the open interval ``(low, high)``: ``low + (high - low) * sigmoid(raw)``.

    Unlike GPy's logistic transform used by the reference, initial values are required to lie
    strictly inside the box, so the parameter never starts where its gradient vanishes
    (reference weakness 2: a lengthscale initialised on its upper bound never moved).
    """

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ConfigError(f"expected finite low < high, got ({self.low}, {self.high})")

    def forward(self, raw: jax.Array) -> jax.Array:
        """Map an unconstrained value into the box."""
        return self.low + (self.high - self.low) * jax.nn.sigmoid(raw)

    def inverse(self, value: Value) -> np.ndarray:
        """Map values strictly inside the box to their unconstrained coordinates."""
        frac = (np.asarray(value, np.float64) - self.low) / (self.high - self.low)
        if not np.all((frac > 0.0) & (frac < 1.0)):
            raise ConfigError(
                f"initial value {value} must lie strictly inside ({self.low}, {self.high})"
            )
        return np.log(frac) - np.log1p(-frac)


@dataclass(frozen=True)
class Positive:
    """A positive parameter without an upper bound: ``softplus(raw) + floor``."""

    floor: float = 1e-6

    def forward(self, raw: jax.Array) -> jax.Array:
        """Map an unconstrained value to ``(floor, inf)``."""
        return jax.nn.softplus(raw) + self.floor

    def inverse(self, value: Value) -> np.ndarray:
        """Map values above ``floor`` to their unconstrained coordinates."""
        shifted = np.asarray(value, np.float64) - self.floor
        if not np.all(shifted > 0):
            raise ConfigError(f"initial value {value} must exceed the floor {self.floor}")
        return shifted + np.log(-np.expm1(-shifted))


@dataclass(frozen=True)
class Real:
    """An unconstrained real parameter (identity transform)."""

    def forward(self, raw: jax.Array) -> jax.Array:
        """Identity."""
        return raw

    def inverse(self, value: Value) -> np.ndarray:
        """Identity."""
        return np.asarray(value, np.float64)


Transform = Bounded | Positive | Real


def constrain(specs: Mapping[str, Transform], raw: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Apply every transform to its raw value."""
    return {name: spec.forward(raw[name]) for name, spec in specs.items()}


def unconstrain(
    specs: Mapping[str, Transform], values: Mapping[str, Value]
) -> dict[str, jax.Array]:
    """Raw coordinates of constrained ``values`` (float32 arrays)."""
    return {
        name: jnp.asarray(spec.inverse(values[name]), jnp.float32) for name, spec in specs.items()
    }

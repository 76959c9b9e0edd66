"""Meta-task predictions inside compiled acquisition functions (pure JAX).

A `MetaTerms` pytree carries the fitted GP of every meta task with its RGPE weight and the
affine maps between the target's window and that task (`metapbt.metadata.scaling`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from metapbt.metadata.scaling import TaskScaling
from metapbt.surrogates.gp import FittedGP, bucket_size, predict


@partial(
    jax.tree_util.register_dataclass,
    data_fields=["gps", "weights", "in_scale", "in_offset", "out_scale", "out_offset"],
    meta_fields=[],
)
@dataclass(frozen=True)
class MetaTerms:
    """Meta-task models as traced data (``M`` tasks).

    Attributes:
        gps: ``M`` fitted GPs, each on its task's own normalisation.
        weights: ``[M]`` RGPE weights.
        in_scale: ``[M, 2]`` and ``in_offset [M, 2]``: target window -> task inputs.
        out_scale: ``[M]`` and ``out_offset [M]``: task predictions -> target scale.
    """

    gps: tuple[FittedGP, ...]
    weights: jax.Array
    in_scale: jax.Array
    in_offset: jax.Array
    out_scale: jax.Array
    out_offset: jax.Array

    @classmethod
    def build(
        cls, gps: list[FittedGP], weights: np.ndarray, scalings: list[TaskScaling]
    ) -> MetaTerms:
        """Pack fitted GPs, weights and scalings."""

        def f32(values: list) -> jax.Array:
            return jnp.asarray(np.asarray(values, np.float64), jnp.float32)

        return cls(
            tuple(gps),
            f32(list(weights)),
            f32([s.input_scale for s in scalings]),
            f32([s.input_offset for s in scalings]),
            f32([s.output_scale for s in scalings]),
            f32([s.output_offset for s in scalings]),
        )


def meta_means(terms: MetaTerms, x: jax.Array) -> jax.Array:
    """Each task's mean prediction at target-normalised ``x [q, D]``, on the target's scale.

    Returns:
        ``[M, q]``.
    """
    rows = []
    for i, gp in enumerate(terms.gps):
        xm = jnp.concatenate([x[:, :2] * terms.in_scale[i] + terms.in_offset[i], x[:, 2:]], 1)
        rows.append(predict(gp, xm)[0] * terms.out_scale[i] + terms.out_offset[i])
    return jnp.stack(rows)


def prior_mean(terms: MetaTerms, x: jax.Array) -> jax.Array:
    """The weighted meta prior ``sum_i w_i mean_i(x)`` at ``x [q, D]``, shape ``[q]``."""
    return terms.weights @ meta_means(terms, x)


_meta_means_jit = jax.jit(meta_means)


def padded_meta_means(terms: MetaTerms, x: np.ndarray) -> np.ndarray:
    """`meta_means` at ``x [n, D]`` outside a compiled function, returning ``[M, n]``.

    The rows are padded to a bucket size, so a target that grows every round (and TAF's pending
    points) reuse the compiled program instead of recompiling it.
    """
    n = x.shape[0]
    padded = np.zeros((bucket_size(n), x.shape[1]), np.float32)
    padded[:n] = x
    return np.asarray(_meta_means_jit(terms, jnp.asarray(padded)), np.float64)[:, :n]

"""Maximising an acquisition function over the unit box ``[0, 1]^d``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import optax

Objective = Callable[[Any, jax.Array], jax.Array]
"""``objective(args, u [d]) -> scalar``; must be a module-level function (it is a jit key)."""


@partial(jax.jit, static_argnames=("objective", "dim", "restarts", "steps", "candidates"))
def maximize_unit_box(
    objective: Objective,
    args: Any,
    key: jax.Array,
    *,
    dim: int,
    restarts: int = 10,
    steps: int = 100,
    candidates: int = 512,
    learning_rate: float = 0.05,
) -> tuple[jax.Array, jax.Array]:
    """Random screening, then projected gradient ascent from the best ``restarts`` candidates.

    ``candidates`` uniform points are scored; the ``restarts`` best start Adam ascent with
    autodiff gradients (the reference used finite differences, weakness 26), projected onto
    the box after every step. The best point seen, screen included, is returned.

    Args:
        objective: Function to maximise, ``objective(args, u [d]) -> scalar``.
        args: Pytree passed to ``objective`` (traced, so new data does not recompile).
        key: PRNG key for the screening points.
        dim: Dimension ``d`` of the box.
        restarts: Number of gradient-ascent runs.
        steps: Adam steps per run.
        candidates: Size of the random screen.
        learning_rate: Adam step size (in unit-box coordinates).

    Returns:
        ``(u_best [d], value_best)``.
    """
    screen = jax.random.uniform(key, (candidates, dim))
    score = jax.vmap(objective, in_axes=(None, 0))

    def finite(values: jax.Array) -> jax.Array:
        return jnp.where(jnp.isfinite(values), values, -jnp.inf)

    screen_values = finite(score(args, screen))
    starts = screen[jnp.argsort(-screen_values)[:restarts]]
    opt = optax.adam(learning_rate)
    grad = jax.grad(objective, argnums=1)

    def ascend(u0: jax.Array) -> jax.Array:
        def body(_: int, carry: tuple[jax.Array, optax.OptState]) -> tuple:
            u, state = carry
            g = grad(args, u)
            updates, state = opt.update(-jnp.where(jnp.isfinite(g), g, 0.0), state)
            return jnp.clip(u + updates, 0.0, 1.0), state

        u, _ = jax.lax.fori_loop(0, steps, body, (u0, opt.init(u0)))
        return u

    finals = jax.vmap(ascend)(starts)
    points = jnp.concatenate([screen, finals])
    values = jnp.concatenate([screen_values, finite(score(args, finals))])
    best = jnp.argmax(values)
    return points[best], values[best]

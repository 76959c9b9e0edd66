"""Double DQN as pure functions over one member; the trainers vmap them over the population.

Shapes: ``N`` the replay buffer's capacity, ``B`` the sampled batch, ``M`` transitions added at
once (a rollout's ``T * E``). Every tuned value (``gamma``, ``tau``, the exploration schedule's
``eps_final`` and ``eps_decay``, the number of gradient steps) is a traced argument, so a new
value never recompiles.

The buffer is a ring of fixed shape (a member's program cannot grow an array): ``pos`` is where
the next transition goes, ``count`` how many are stored (at most ``N``). It stores each
transition's next observation beside its observation (twice the memory of a frame store, and no
episode-boundary bookkeeping). A transition that ended an episode (terminated or truncated: the
trainers give one ``done``) does not bootstrap, as rejax's and purejaxrl's DQN do not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class ReplayBuffer(NamedTuple):
    """One member's transitions, a ring of capacity ``N``."""

    obs: jax.Array  # [N, ...]
    action: jax.Array  # [N]
    reward: jax.Array  # [N]
    next_obs: jax.Array  # [N, ...]
    done: jax.Array  # [N]
    pos: jax.Array  # scalar int32: where the next transition goes
    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count; scalar int32, <= N


def buffer_init(capacity: int, obs_shape: tuple[int, ...]) -> ReplayBuffer:
    """An empty buffer of ``capacity`` transitions of observations shaped ``obs_shape``."""
    frames = jnp.zeros((capacity, *obs_shape), jnp.float32)
    return ReplayBuffer(
        frames,
        jnp.zeros(capacity, jnp.int32),
        jnp.zeros(capacity, jnp.float32),
        frames,
        jnp.zeros(capacity, jnp.bool_),
        jnp.int32(0),
        jnp.int32(0),
    )


def buffer_add(
    buffer: ReplayBuffer,
    obs: jax.Array,
    action: jax.Array,
    reward: jax.Array,
    next_obs: jax.Array,
    done: jax.Array,
) -> ReplayBuffer:
    """``buffer`` with ``M`` transitions (each argument ``[M, ...]``) written from ``pos`` on.

    Past the end the ring wraps and the oldest transitions are overwritten; ``M`` may not
    exceed the capacity (the agent checks).
    """
    capacity = buffer.action.shape[0]
    added = action.shape[0]
    index = (buffer.pos + jnp.arange(added)) % capacity
    return ReplayBuffer(
        buffer.obs.at[index].set(obs.astype(jnp.float32)),
        buffer.action.at[index].set(action.astype(jnp.int32)),
        buffer.reward.at[index].set(reward.astype(jnp.float32)),
        buffer.next_obs.at[index].set(next_obs.astype(jnp.float32)),
        buffer.done.at[index].set(done.astype(jnp.bool_)),
        (buffer.pos + added) % capacity,
        jnp.minimum(buffer.count + added, capacity),
    )


def buffer_sample(buffer: ReplayBuffer, key: jax.Array, size: int) -> ReplayBuffer:
    """``size`` transitions drawn uniformly with replacement from the stored ones.

    Returns a `ReplayBuffer` of ``size`` rows (``pos``/``count`` as in ``buffer``). An
    empty buffer gives copies of row 0 (the caller masks updates until it has enough).
    """
    index = jax.random.randint(key, (size,), 0, jnp.maximum(buffer.count, 1))
    take = lambda x: x[index]  # noqa: E731
    return buffer._replace(
        obs=take(buffer.obs),
        action=take(buffer.action),
        reward=take(buffer.reward),
        next_obs=take(buffer.next_obs),
        done=take(buffer.done),
    )


def epsilon(step: jax.Array, start: float, final: jax.Array, decay_steps: jax.Array) -> jax.Array:
    """The exploration rate after ``step`` environment steps.

    Linear from ``start`` to ``final`` over ``decay_steps`` steps, then ``final`` (``decay_steps``
    0: ``final`` from the start).
    """
    progress = jnp.clip(step / jnp.maximum(decay_steps, 1.0), 0.0, 1.0)
    progress = jnp.where(decay_steps > 0, progress, 1.0)
    return start + (final - start) * progress


def epsilon_greedy(key: jax.Array, q_values: jax.Array, eps: jax.Array) -> jax.Array:
    """Per row of ``q_values [E, A]``: a uniform action with probability ``eps``, else greedy."""
    k_explore, k_action = jax.random.split(key)
    rows, actions = q_values.shape
    explore = jax.random.uniform(k_explore, (rows,)) < eps
    random = jax.random.randint(k_action, (rows,), 0, actions)
    return jnp.where(explore, random, jnp.argmax(q_values, axis=-1))


QFn = Callable[[Any, jax.Array], jax.Array]
"""The Q-network: ``(params, obs [B, ...]) -> q values [B, A]``."""


def double_q_targets(
    apply_fn: QFn,
    params: Any,
    target_params: Any,
    batch: ReplayBuffer,
    gamma: jax.Array,
) -> jax.Array:
    """Double DQN's targets ``r + gamma * (1 - done) * Q_target(s', argmax_a Q(s', a))`` ``[B]``.

    The online network picks the next action, the target network values it (van Hasselt et
    al., 2016); no gradient flows through the target.
    """
    next_action = jnp.argmax(apply_fn(params, batch.next_obs), axis=-1)
    next_q = jnp.take_along_axis(
        apply_fn(target_params, batch.next_obs), next_action[:, None], axis=-1
    )[:, 0]
    bootstrap = jnp.where(batch.done, 0.0, gamma * next_q)
    return jax.lax.stop_gradient(batch.reward + bootstrap)


def td_loss(
    apply_fn: QFn,
    params: Any,
    target_params: Any,
    batch: ReplayBuffer,
    gamma: jax.Array,
) -> jax.Array:
    """Half the mean squared TD error of the actions taken (rejax's ``l2_loss``)."""
    q = jnp.take_along_axis(apply_fn(params, batch.obs), batch.action[:, None], axis=-1)[:, 0]
    targets = double_q_targets(apply_fn, params, target_params, batch, gamma)
    return 0.5 * jnp.mean((q - targets) ** 2)


def polyak(target: Any, online: Any, tau: jax.Array) -> Any:
    """``target`` moved ``tau`` of the way to ``online`` (1: a hard copy, 0: unchanged)."""
    return jax.tree.map(lambda t, o: t + tau * (o - t), target, online)

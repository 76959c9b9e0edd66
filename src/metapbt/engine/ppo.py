"""PPO as pure functions over one member; the trainer vmaps them over the population.

Shapes: ``T`` rollout steps, ``E`` environments, ``B`` minibatch samples. Tuned hyperparameters
(``lr`` inside the optimiser state via ``optax.inject_hyperparams``; ``lambda``, ``clip``,
``ent_coef`` in :class:`MemberState`) are traced arrays, so changing them never recompiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from metapbt.engine.presets import PPOConfig

TUNABLE = ("lr", "lambda", "clip", "ent_coef")
"""Hyperparameters the engine can tune during training."""


class Transition(NamedTuple):
    """One rollout, ``[T, E, ...]``."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    done: jax.Array
    value: jax.Array
    log_prob: jax.Array


@partial(
    jax.tree_util.register_dataclass,
    data_fields=["params", "opt_state", "env_state", "obs", "key", "kl_coeff", "hparams"],
    meta_fields=[],
)
@dataclass(frozen=True)
class MemberState:
    """Everything one member carries between iterations (a pytree; stacked ``[P]``)."""

    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array
    kl_coeff: jax.Array
    hparams: dict[str, jax.Array]


def make_optimizer(config: PPOConfig) -> optax.GradientTransformation:
    """Adam (optionally after global-norm clipping) with an injectable learning rate."""

    def build(learning_rate: float) -> optax.GradientTransformation:
        adam = optax.adam(learning_rate, eps=1e-5)
        if config.max_grad_norm is None:
            return adam
        return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), adam)

    return optax.inject_hyperparams(build)(learning_rate=1e-4)


def gae(
    reward: jax.Array,
    value: jax.Array,
    done: jax.Array,
    last_value: jax.Array,
    gamma: float,
    lam: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation.

    Args:
        reward: ``[T, E]`` rewards.
        value: ``[T, E]`` value estimates of the observations the actions were taken in.
        done: ``[T, E]`` 1 where the episode ended at this step (no bootstrap across it).
        last_value: ``[E]`` value of the observation after the last step.
        gamma: Discount.
        lam: GAE lambda (traced).

    Returns:
        ``(advantages [T, E], returns [T, E])``.
    """

    def backward(carry, step):
        advantage, next_value = carry
        r, v, d = step
        not_done = 1.0 - d
        delta = r + gamma * next_value * not_done - v
        advantage = delta + gamma * lam * not_done * advantage
        return (advantage, v), advantage

    init = (jnp.zeros_like(last_value), last_value)
    _, advantages = jax.lax.scan(
        backward, init, (reward, value, done.astype(value.dtype)), reverse=True
    )
    return advantages, advantages + value


def ppo_loss(
    params: Any,
    apply_fn: Any,
    batch: tuple[jax.Array, ...],
    hparams: dict[str, jax.Array],
    kl_coeff: jax.Array,
    config: PPOConfig,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Clipped-surrogate PPO loss on one minibatch ``(obs, action, log_prob, adv, return)``.

    The KL penalty uses the sample estimate ``mean(log_prob_old - log_prob_new)`` of
    KL(old || new); advantages are standardised per minibatch.
    """
    obs, action, old_log_prob, advantage, target = batch
    dist, value = apply_fn(params, obs)
    log_prob = dist.log_prob(action)
    ratio = jnp.exp(log_prob - old_log_prob)
    adv = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    clip = hparams["clip"]
    policy = -jnp.mean(jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - clip, 1 + clip) * adv))
    value_err = (value - target) ** 2
    if config.vf_clip is not None:
        value_err = jnp.minimum(value_err, config.vf_clip)
    value_loss = jnp.mean(value_err)
    entropy = jnp.mean(dist.entropy())
    kl = jnp.mean(old_log_prob - log_prob)
    loss = policy + config.vf_coef * value_loss - hparams["ent_coef"] * entropy + kl_coeff * kl
    return loss, {"policy": policy, "value": value_loss, "entropy": entropy, "kl": kl}


def update_kl_coeff(kl_coeff: jax.Array, kl: jax.Array, target: float) -> jax.Array:
    """RLlib's adaptive KL coefficient: x1.5 above 2x target, x0.5 below half of it."""
    coeff = jnp.where(kl > 2.0 * target, kl_coeff * 1.5, kl_coeff)
    return jnp.where(kl < 0.5 * target, coeff * 0.5, coeff)

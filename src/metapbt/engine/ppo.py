"""PPO as pure functions over one member; the trainers vmap them over the population.

Shapes: ``T`` rollout steps, ``E`` environments, ``B`` minibatch samples, ``N = T * E`` samples
of one update. Tuned hyperparameters (``lr`` inside the optimiser state via
``optax.inject_hyperparams``; the others, `metapbt.engine.tuning.TUNABLE`, in
`MemberState`) are traced arrays, so changing them never recompiles.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from metapbt.engine.presets import PPOConfig


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
    """Everything one member carries between iterations (a pytree; stacked ``[P]``).

    Attributes:
        params: Network parameters.
        opt_state: Optimiser state (its ``hyperparams["learning_rate"]`` is the traced ``lr``).
        env_state: The trainer's environments mid-episode: gymnax states ``[E, ...]`` for the
            JAX trainer, a leafless ``Episodes`` handle for the host trainer.
        obs: ``[E, obs_dim]`` current observations.
        key: The member's PRNG key.
        kl_coeff: Scalar KL-penalty coefficient.
        hparams: Traced ``lambda``, ``clip`` and ``ent_coef``, and any other tuned
            hyperparameter but ``lr`` (scalars).
    """

    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array
    kl_coeff: jax.Array
    hparams: dict[str, jax.Array]

    def replace(self, **changes: Any) -> MemberState:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


ApplyFn = Callable[[Any, jax.Array], tuple[Any, jax.Array]]
"""The network: ``(params, obs [B, obs_dim]) -> (action distribution, value [B])``."""


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
    gamma: jax.Array | float,
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
    apply_fn: ApplyFn,
    batch: tuple[jax.Array, ...],
    hparams: dict[str, jax.Array],
    kl_coeff: jax.Array,
    config: PPOConfig,
    normalize: bool = True,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Clipped-surrogate PPO loss on one minibatch.

    The KL penalty uses the sample estimate ``mean(log_prob_old - log_prob_new)`` of
    KL(old || new); advantages are standardised per minibatch unless ``normalize`` is off
    (the caller then passes them as it wants them: `ppo_update` with tuned
    ``minibatches`` or ``adv_norm``).

    Args:
        params: The member's network parameters (differentiated).
        apply_fn: The network's apply function.
        batch: ``(obs [B, obs_dim], action [B, ...], log_prob [B], advantage [B],
            return [B])``, the rollout's log-probs and GAE targets.
        hparams: Traced ``clip`` and ``ent_coef`` (scalars).
        kl_coeff: Scalar KL-penalty coefficient.
        config: ``vf_clip`` and ``vf_coef``.
        normalize: Standardise the minibatch's advantages (static).

    Returns:
        ``(loss, {"policy", "value", "entropy", "kl"})``, all scalars.
    """
    obs, action, old_log_prob, advantage, target = batch
    dist, value = apply_fn(params, obs)
    log_prob = dist.log_prob(action)
    ratio = jnp.exp(log_prob - old_log_prob)
    adv = standardise(advantage) if normalize else advantage
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


def ppo_update(
    state: MemberState,
    traj: Transition,
    last_value: jax.Array,
    apply_fn: ApplyFn,
    optimizer: optax.GradientTransformation,
    config: PPOConfig,
) -> MemberState:
    """One member's PPO update on its rollout: GAE, then ``epochs`` passes of minibatch steps.

    Tuned ``gamma``, ``epochs``, ``minibatches`` and ``adv_norm`` (present in
    ``state.hparams`` when tuned) are traced; `metapbt.engine.tuning` says how the two
    counts are (masking up to ``config.max_epochs``; gradients averaged over
    ``config.minibatch_chunks`` chunks). Untuned, the update is the plain static one.

    Args:
        state: The member (its ``params``, ``opt_state``, ``key``, ``kl_coeff`` and
            ``hparams`` are used; the environment fields pass through).
        traj: The rollout, every field ``[T, E, ...]`` with ``T * E = config.batch_size``.
        last_value: ``[E]`` value of the observation after the rollout's last step.
        apply_fn: The network's apply function.
        optimizer: The optimiser whose state is ``state.opt_state``.
        config: Structural settings: ``gamma``, ``epochs``, ``minibatch_size`` and the loss's.

    Returns:
        The member with new ``params``, ``opt_state``, ``key`` (split once) and ``kl_coeff``
        (adapted to the last epoch's mean KL).
    """
    hp = state.hparams
    samples = _samples(traj, last_value, hp, config)
    key, k_perm = jax.random.split(state.key)
    step = _Step(apply_fn, optimizer, config, hp, state.kl_coeff, _plan(hp, config))
    init = (state.params, state.opt_state, jnp.float32(0.0))  # (params, opt state, its KL)
    params, opt_state, kl = _epochs(partial(_epoch, step, samples), init, k_perm, hp, config)
    kl_coeff = update_kl_coeff(state.kl_coeff, kl, config.kl_target)
    return state.replace(params=params, opt_state=opt_state, key=key, kl_coeff=kl_coeff)


Samples = tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]
"""An update's samples: ``(obs, action, log_prob, advantage, return)``, each ``[N, ...]``."""

Carry = tuple[Any, Any, Any]
"""What an epoch's steps carry: ``(params, opt_state, x)``; ``x`` the gradients accumulated
over a minibatch's chunks (a minibatch step) or the last pass's mean KL (an epoch)."""


def _samples(
    traj: Transition, last_value: jax.Array, hp: dict[str, jax.Array], config: PPOConfig
) -> Samples:
    """The rollout ``[T, E, ...]`` as samples ``[N, ...]``, with GAE advantages and returns.

    GAE runs on the rewards times ``config.reward_scale``, with the tuned ``gamma`` when
    present and the traced ``lambda``; then time and environments are flattened
    (``N = T * E``).
    """
    adv, ret = gae(
        traj.reward * config.reward_scale,
        traj.value,
        traj.done,
        last_value,
        hp.get("gamma", config.gamma),
        hp["lambda"],
    )
    batch = (traj.obs, traj.action, traj.log_prob, adv, ret)
    return jax.tree.map(lambda x: x.reshape((-1, *x.shape[2:])), batch)


class _Plan(NamedTuple):
    """How an epoch cuts its ``N`` samples into chunks and when it steps the optimiser.

    Attributes:
        chunks: Chunks ``[N / chunks, ...]`` per epoch (static): the minibatches untuned,
            ``config.minibatch_chunks`` when the minibatch count is tuned.
        group: Chunks per optimiser step: 1 untuned; ``chunks / minibatches`` tuned (traced).
        tuned: The minibatch count is tuned: gradients are averaged over each group's chunks.
        outside: Advantages are standardised per minibatch before the loss (their
            normalisation is tuned, or a minibatch spans several chunks); else inside it.
    """

    chunks: int
    group: jax.Array | int
    tuned: bool
    outside: bool


def _plan(hp: dict[str, jax.Array], config: PPOConfig) -> _Plan:
    """The epochs' chunking for the tuned hyperparameters ``hp`` (`_Plan`)."""
    tuned_mb = "minibatches" in hp
    chunks = config.minibatch_chunks if tuned_mb else config.batch_size // config.minibatch_size
    if chunks is None:  # tuned minibatches without chunks (untuned: a whole division)
        raise ValueError("tuned minibatches need config.minibatch_chunks (tuning.for_space)")
    group = chunks // hp["minibatches"].astype(jnp.int32) if tuned_mb else 1
    return _Plan(chunks, group, tuned_mb, tuned_mb or "adv_norm" in hp)


class _Step(NamedTuple):
    """What every minibatch step of one member's update uses (see `ppo_update`'s Args)."""

    apply_fn: ApplyFn
    optimizer: optax.GradientTransformation
    config: PPOConfig
    hparams: dict[str, jax.Array]
    kl_coeff: jax.Array
    plan: _Plan


def _minibatch_step(
    step: _Step, carry: Carry, xs: tuple[jax.Array, Samples]
) -> tuple[Carry, jax.Array]:
    """One chunk of an epoch: its loss's gradient, and an optimiser step if a minibatch ends.

    Args:
        step: The update's functions, settings and chunking.
        carry: ``(params, opt_state, acc)``; ``acc`` the gradients summed over the current
            minibatch's chunks so far (``None`` untuned: every chunk is a minibatch).
        xs: ``(j, chunk)``: the chunk's index in the epoch and its samples ``[B, ...]``.

    Returns:
        The new carry and the chunk's KL estimate (a scalar).
    """
    p, o, acc = carry
    j, mb = xs
    grad = jax.grad(ppo_loss, has_aux=True)
    outside = step.plan.outside
    grads, info = grad(p, step.apply_fn, mb, step.hparams, step.kl_coeff, step.config, not outside)
    if not step.plan.tuned:
        updates, o = step.optimizer.update(grads, o, p)
        return (optax.apply_updates(p, updates), o, acc), info["kl"]
    group = step.plan.group
    acc = jax.tree.map(jnp.add, acc, grads)
    last = (j + 1) % group == 0
    mean = jax.tree.map(lambda g: g / group, acc)
    updates, o2 = step.optimizer.update(mean, o, p)
    p2 = optax.apply_updates(p, updates)
    p, o = _where(last, (p2, o2), (p, o))
    acc = jax.tree.map(lambda a: jnp.where(last, jnp.zeros_like(a), a), acc)
    return (p, o, acc), info["kl"]


def _epoch(step: _Step, samples: Samples, carry: Carry, key: jax.Array) -> tuple[Carry, jax.Array]:
    """One pass over the samples ``[N, ...]`` in a random order, chunk by chunk ``[B, ...]``.

    Args:
        step: The update's functions, settings and chunking.
        samples: The update's samples (`_samples`).
        carry: ``(params, opt_state, kl)`` (``kl`` of the previous pass, not read).
        key: The pass's permutation key.

    Returns:
        ``((params, opt_state, kl), kl)``, ``kl`` the pass's mean KL estimate (a scalar).
    """
    params, opt_state, _ = carry
    plan, hp = step.plan, step.hparams
    perm = jax.random.permutation(key, step.config.batch_size)
    data = jax.tree.map(lambda x: x[perm], samples)
    if plan.outside:
        advantage = _standardised(data[3], plan.chunks, plan.group, hp.get("adv_norm"))
        data = (*data[:3], advantage, data[4])
    mbs = jax.tree.map(lambda x: x.reshape((plan.chunks, -1, *x.shape[1:])), data)
    zeros = jax.tree.map(jnp.zeros_like, params) if plan.tuned else None
    (params, opt_state, _), kls = jax.lax.scan(
        partial(_minibatch_step, step), (params, opt_state, zeros), (jnp.arange(plan.chunks), mbs)
    )
    return (params, opt_state, kls.mean()), kls.mean()


def _epochs(
    epoch: Callable[[Carry, jax.Array], tuple[Carry, jax.Array]],
    init: Carry,
    key: jax.Array,
    hp: dict[str, jax.Array],
    config: PPOConfig,
) -> Carry:
    """``config.epochs`` passes of ``epoch``, or the member's tuned ``epochs``.

    A tuned count runs ``config.max_epochs`` passes, those beyond the member's count masked
    (they leave everything as it was; keys from `_epoch_keys`).

    Returns:
        ``(params, opt_state, kl)`` after the passes, ``kl`` the last pass's mean KL.
    """
    if "epochs" not in hp:
        keys = jax.random.split(key, config.epochs)  # as every run before tuned counts
        (params, opt_state, _), kls = jax.lax.scan(epoch, init, keys)
        return params, opt_state, kls[-1]
    if config.max_epochs is None:
        raise ValueError("tuned epochs need config.max_epochs (tuning.for_space)")
    count = hp["epochs"].astype(jnp.int32)

    def masked(carry: Carry, xs: tuple[jax.Array, jax.Array]) -> tuple[Carry, None]:
        e, k = xs
        new, _ = epoch(carry, k)
        return _where(e < count, new, carry), None

    keys = _epoch_keys(key, config.max_epochs)
    (params, opt_state, kl), _ = jax.lax.scan(masked, init, (jnp.arange(config.max_epochs), keys))
    return params, opt_state, kl


def _epoch_keys(key: jax.Array, epochs: int) -> jax.Array:
    """``[epochs]`` permutation keys of a tuned count, pass ``e``'s folded in from ``key``.

    The first ``e`` keys do not depend on how many passes follow, so masking the passes beyond
    a member's count changes nothing: the member trains as a program whose largest count is
    its own would train it. (The untuned update splits ``key`` into ``epochs`` keys, as every
    run before tuned counts did; a tuned run's permutations are other draws of the same law.)
    """
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, jnp.arange(epochs))


def standardise(advantage: jax.Array) -> jax.Array:
    """Advantages minus their mean, over their standard deviation (plus 1e-8)."""
    return (advantage - advantage.mean()) / (advantage.std() + 1e-8)


def _standardised(
    advantage: jax.Array, chunks: int, group: jax.Array | int, flag: jax.Array | None
) -> jax.Array:
    """Advantages ``[N]`` standardised per minibatch of ``group`` consecutive chunks.

    ``flag`` (the traced ``adv_norm``; ``None``: on) selects them or the raw ones.
    """
    per_chunk = advantage.reshape((chunks, -1))
    ids = jnp.arange(chunks) // group  # the minibatch of every chunk
    size = per_chunk.shape[1] * group
    mean = jax.ops.segment_sum(per_chunk.sum(1), ids, num_segments=chunks) / size
    centred = per_chunk - mean[ids][:, None]
    var = jax.ops.segment_sum((centred**2).sum(1), ids, num_segments=chunks) / size
    out = (centred / (jnp.sqrt(var)[ids][:, None] + 1e-8)).reshape(advantage.shape)
    return out if flag is None else jnp.where(flag > 0.5, out, advantage)


def _where(cond: jax.Array, new: Any, old: Any) -> Any:
    """``new`` where ``cond`` holds, else ``old``, leaf by leaf."""
    return jax.tree.map(lambda a, b: jnp.where(cond, a, b), new, old)

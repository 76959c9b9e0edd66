"""A population trainer for environments that step on the host (Box2D LunarLander).

The environments cannot run inside JAX, so one iteration of every member is:

1. ``rollout_len`` host steps; at each, one jitted call vmapped over members samples the actions
   (with values and log-probs) of all ``P x E`` environments, then the host steps them. An
   episode that ends (terminated or truncated) is reset at once and its last transition is
   marked done, so GAE never bootstraps across it: truncation is treated as termination, as in
   :class:`~metapbt.engine.trainer.PopulationTrainer`.
2. The shared jitted PPO update, vmapped over members, on the ``[P, T, E]`` rollout: the same
   traced per-member ``lr``/``lambda``/``clip``/``ent_coef``, optimiser state and KL coefficient.

The environments live on the trainer, not in the state. The state's ``env_state`` is a token
``[P]`` naming the environments' episodes: ``train`` continues them when the state it gets is
the one the last ``train`` returned (or one derived from it by ``apply``/``set_hparams``), and
otherwise starts fresh episodes seeded from each member's key. So training an old state twice
gives the same result, and a state restored from a checkpoint starts fresh episodes: a resumed
run is reproducible, but not bit-identical to the uninterrupted one, whose episodes ran on.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metapbt import envs
from metapbt.engine.ppo import MemberState, Transition
from metapbt.engine.presets import PPOConfig
from metapbt.engine.trainer import BasePopulationTrainer
from metapbt.errors import ConfigError

logger = logging.getLogger(__name__)

_TOKENS = itertools.count(1)
"""Episode tokens, unique in the process (0 marks a state whose episodes no trainer holds)."""


class HostPopulationTrainer(BasePopulationTrainer):
    """Trains ``size`` PPO members on host-stepped environments (``envs.runs_on_host``).

    Each member owns ``num_envs`` training environments and ``eval_episodes`` evaluation
    environments, created once.

    Args:
        env_id: Registered host environment id, e.g. ``"lunar_lander"``.
        context: The context (planet name, ``"name=value"`` text or mapping).
        config: Structural PPO settings (a preset).
        size: Population size.
    """

    def __init__(
        self,
        env_id: str,
        context: str | Mapping[str, float] | None,
        config: PPOConfig,
        size: int,
    ) -> None:
        if not envs.runs_on_host(env_id):
            raise ConfigError(f"{env_id} steps inside JAX: train it with PopulationTrainer")
        self.context = envs.resolve_context(env_id, context)
        spec = envs.spec(env_id)
        self._envs = [spec.factory(self.context) for _ in range(size * config.num_envs)]
        self._eval_envs = [spec.factory(self.context) for _ in range(size * config.eval_episodes)]
        super().__init__(config, size, self._envs[0].action_space)
        self._n_actions = int(self._envs[0].action_space.n)
        obs_shape = self._envs[0].observation_space.shape
        self._obs = np.zeros((size, config.num_envs, *obs_shape), np.float32)
        self._token = 0
        self._act = jax.jit(jax.vmap(self._act_member))
        self._value = jax.jit(jax.vmap(lambda p, o: self.network.apply(p, o)[1]))
        self._update_all = jax.jit(jax.vmap(self._update))

    def _fresh(self, key: jax.Array) -> MemberState:
        k_net, k_run = jax.vmap(jax.random.split, out_axes=1)(jax.random.split(key, self.size))
        self._obs = self._reset(self._envs, k_run, self.config.num_envs)
        self._token = next(_TOKENS)
        tokens = jnp.full(self.size, self._token, jnp.int32)
        return jax.vmap(self._new_member)(k_net, tokens, jnp.asarray(self._obs), k_run)

    def _train_iterations(self, state: MemberState, iterations: int) -> MemberState:
        if not bool(jnp.all(state.env_state == self._token)):
            logger.debug("state is not the trainer's latest: fresh episodes from its keys")
            self._obs = self._reset(self._envs, state.key, self.config.num_envs)
        self._token = 0  # the episodes are about to move on: no state names them until we finish
        for _ in range(iterations):
            state, traj, last_value = self._rollout(state)
            state = self._update_all(state, traj, last_value)
        self._token = next(_TOKENS)
        tokens = jnp.full(self.size, self._token, jnp.int32)
        return dataclasses.replace(state, env_state=tokens, obs=jnp.asarray(self._obs))

    def evaluate(self, state: MemberState, key: jax.Array) -> np.ndarray:
        """Play ``eval_episodes`` episodes per member on the host (contract: the base class).

        All ``P x eval_episodes`` episodes run in lockstep, each until it terminates or hits
        the time limit; diverged members are not played.
        """
        n = self.config.eval_episodes
        finite = _finite_members(state.params, self.size)
        keys = jax.random.split(key, self.size)
        obs = self._reset(self._eval_envs, keys, n)
        returns = np.zeros((self.size, n))
        alive = np.repeat(finite[:, None], n, axis=1)
        while alive.any():
            action, _, _, keys = self._act(state.params, obs, keys)
            action = self._clip(action)  # waits for the result, so obs may now change
            for p, e in zip(*np.nonzero(alive), strict=True):
                env = self._eval_envs[p * n + e]
                obs[p, e], reward, term, trunc, _ = env.step(int(action[p, e]))
                returns[p, e] += reward
                alive[p, e] = not (term or trunc)
        return np.where(finite, returns.mean(axis=1), np.nan)

    # --- internals -------------------------------------------------------------------------

    def _act_member(
        self, params: Any, obs: jax.Array, key: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        """One member's policy step on ``obs [E, obs_dim]``: (action, value, log_prob, key)."""
        key, k_act = jax.random.split(key)
        dist, value = self.network.apply(params, obs)
        action = dist.sample(seed=k_act)
        return action, value, dist.log_prob(action), key

    def _clip(self, action: jax.Array) -> np.ndarray:
        # A diverged member's NaN logits still sample an index; clip so it cannot crash the run.
        return np.clip(np.asarray(action), 0, self._n_actions - 1)

    def _reset(self, env_list: Sequence[Any], keys: jax.Array, per_member: int) -> np.ndarray:
        """Reset ``per_member`` environments of each member with seeds from ``keys [P]``."""
        seeds = np.asarray(
            jax.vmap(lambda k: jax.random.randint(k, (per_member,), 0, 2**31 - 1))(
                jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, 1)
            )
        )
        first = [env.reset(seed=int(s))[0] for env, s in zip(env_list, seeds.ravel(), strict=True)]
        return np.stack(first).reshape(self.size, per_member, -1).astype(np.float32)

    def _rollout(self, state: MemberState) -> tuple[MemberState, Transition, jax.Array]:
        """``rollout_len`` host steps of every member's environments; ``traj [P, T, E]``."""
        size, steps, n_envs = self.size, self.config.rollout_len, self.config.num_envs
        obs_buf = np.empty((size, steps, *self._obs.shape[1:]), np.float32)
        actions = np.empty((size, steps, n_envs), np.int32)
        rewards = np.empty((size, steps, n_envs), np.float32)
        dones = np.empty((size, steps, n_envs), bool)
        values = np.empty((size, steps, n_envs), np.float32)
        log_probs = np.empty((size, steps, n_envs), np.float32)
        key = state.key
        for t in range(steps):
            obs_buf[:, t] = self._obs
            action, value, log_prob, key = self._act(state.params, obs_buf[:, t], key)
            values[:, t], log_probs[:, t] = jax.device_get((value, log_prob))
            actions[:, t] = self._clip(action)
            # A new array each step, never written in place: a returned state's obs may share
            # its memory (jnp.asarray of a host array need not copy on CPU).
            self._obs = self._step(actions[:, t], rewards[:, t], dones[:, t])
        last_value = self._value(state.params, self._obs)
        traj = Transition(obs_buf, actions, rewards, dones, values, log_probs)
        return dataclasses.replace(state, key=key), traj, last_value

    def _step(self, action: np.ndarray, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        """Step every training environment; fill ``rewards``/``dones [P, E]``; next obs."""
        n_envs = self.config.num_envs
        next_obs = np.empty_like(self._obs)
        for i, env in enumerate(self._envs):
            p, e = divmod(i, n_envs)
            obs, reward, term, trunc, _ = env.step(int(action[p, e]))
            if term or trunc:
                obs, _ = env.reset()
            next_obs[p, e] = obs
            rewards[p, e] = reward
            dones[p, e] = term or trunc
        return next_obs


def _finite_members(params: Any, size: int) -> np.ndarray:
    """``[P]`` true where every parameter of the member is finite."""
    leaves = jax.tree.leaves(params)
    return np.logical_and.reduce(
        [np.isfinite(np.asarray(x)).reshape(size, -1).all(axis=1) for x in leaves]
    )

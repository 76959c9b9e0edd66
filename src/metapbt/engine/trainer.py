"""The JAX population trainer: every member's rollouts and PPO updates in one jitted program.

Environments are gymnax environments under one context (:func:`metapbt.envs.make`); the whole
interval (rollouts, GAE, minibatch epochs) of every member runs vmapped over the members in one
compiled program, and so does evaluation. The environment parameters are compile-time
constants of those programs. Members of several runs (a batch) share the trainer when their
runs share the context: passing per-member parameters into the program (one program for every
context) made XLA's CPU runtime hang now and then (README, "Batches"), which programs with
constant parameters have not done.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metapbt import envs
from metapbt.engine.networks import update_obs_stats
from metapbt.engine.ppo import MemberState, Transition
from metapbt.engine.presets import PPOConfig
from metapbt.engine.trainer_base import BasePopulationTrainer


class PopulationTrainer(BasePopulationTrainer):
    """Trains ``size`` PPO members on one contextual gymnax environment, all in one program.

    Args:
        env_id: Registered environment id.
        context: The context (planet name, ``"name=value"`` text or mapping) of every member.
        config: Structural PPO settings (a preset).
        size: Number of members.
    """

    def __init__(
        self,
        env_id: str,
        context: str | Mapping[str, float] | None,
        config: PPOConfig,
        size: int,
    ) -> None:
        self.env, self.env_params = envs.make(env_id, context)
        super().__init__(
            config,
            size,
            self.env.action_space(self.env_params),
            self.env.observation_space(self.env_params),
        )
        self.eval_steps = int(self.env_params.max_steps_in_episode)
        self._train = jax.jit(self._train_impl, static_argnames="iterations")
        self._evaluate = jax.jit(self._evaluate_impl)

    def _fresh(self, keys: jax.Array) -> MemberState:
        return jax.vmap(self._init_member)(keys)

    def _init_member(self, key: jax.Array) -> MemberState:
        k_net, k_env, k_run = jax.random.split(key, 3)
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(
            jax.random.split(k_env, self.config.num_envs), self.env_params
        )
        return self._new_member(k_net, env_state, obs, k_run)

    def _train_iterations(self, state: MemberState, iterations: int) -> MemberState:
        return self._train(state, iterations=iterations)

    def evaluate_members(self, state: MemberState, keys: jax.Array) -> np.ndarray:
        """Evaluate every member in one jitted program (contract: the base class)."""
        return np.asarray(self._evaluate(state.params, keys), np.float64)

    # --- jitted internals -------------------------------------------------------------

    def _train_impl(self, state: MemberState, iterations: int) -> MemberState:
        def member(s: MemberState) -> MemberState:
            return jax.lax.fori_loop(0, iterations, lambda _, x: self._iteration(x), s)

        return jax.vmap(member)(state)

    def _iteration(self, state: MemberState) -> MemberState:
        return self.update(*self._rollout(state))

    def _rollout(self, state: MemberState) -> tuple[MemberState, Transition, jax.Array]:
        """``rollout_len`` steps of one member's ``E`` environments: ``traj [T, E]``."""
        step_env = jax.vmap(self.env.step, in_axes=(0, 0, 0, None))

        def one(carry, _):
            env_state, obs, key = carry
            key, k_act, k_env = jax.random.split(key, 3)
            dist, value = self.network.apply(state.params, obs)
            action = dist.sample(seed=k_act)
            log_prob = dist.log_prob(action)
            obs2, env_state, reward, term, trunc, _ = step_env(
                jax.random.split(k_env, self.config.num_envs),
                env_state,
                action,
                self.env_params,
            )
            # Truncation is treated as termination (no bootstrap), as most JAX PPO does.
            done = jnp.logical_or(term, trunc)
            return (env_state, obs2, key), Transition(obs, action, reward, done, value, log_prob)

        (env_state, obs, key), traj = jax.lax.scan(
            one, (state.env_state, state.obs, state.key), None, self.config.rollout_len
        )
        _, last_value = self.network.apply(state.params, obs)
        state = state.replace(env_state=env_state, obs=obs, key=key)
        if self.config.normalize_obs:  # the rollout's observations, before the update (brax)
            state = state.replace(params=update_obs_stats(state.params, traj.obs))
        return state, traj, last_value

    def _evaluate_impl(self, params: Any, keys: jax.Array) -> jax.Array:
        def member(p: Any, key: jax.Array) -> jax.Array:
            n = self.config.eval_episodes
            k_reset, k_run = jax.random.split(key)
            obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(
                jax.random.split(k_reset, n), self.env_params
            )
            step_env = jax.vmap(self.env.step, in_axes=(0, 0, 0, None))

            def one(carry, k):
                env_state, obs, ret, alive = carry
                k_act, k_env = jax.random.split(k)
                dist, _ = self.network.apply(p, obs)
                obs, env_state, reward, term, trunc, _ = step_env(
                    jax.random.split(k_env, n),
                    env_state,
                    dist.sample(seed=k_act),
                    self.env_params,
                )
                ret = ret + reward * alive
                alive = alive * (1.0 - jnp.logical_or(term, trunc))
                return (env_state, obs, ret, alive), None

            init = (env_state, obs, jnp.zeros(n), jnp.ones(n))
            (_, _, ret, _), _ = jax.lax.scan(one, init, jax.random.split(k_run, self.eval_steps))
            finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(p)]))
            return jnp.where(finite, ret.mean(), jnp.nan)

        return jax.vmap(member)(params, keys)

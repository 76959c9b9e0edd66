"""The JAX population trainer: every member's rollouts and updates in one jitted program.

Environments are gymnax-API environments (`metapbt.envs.make`); the whole interval
(rollouts and the agent's learning: PPO's GAE and minibatch epochs) of every member runs vmapped
over the members in one compiled program, and so does evaluation. Under one context the
environment parameters are compile-time constants of those programs (as a lone run has always
used them). Given a context per member
(``mixed``: a batch of runs under several contexts of one environment), the parameters are
stacked ``[P]`` and passed into the programs as traced, vmapped values: one program for every
context (``study run --mix-contexts``). Such programs made XLA's CPU runtime hang now and then
in early tests; 164 fresh processes of them no longer did (``docs/stall-report.md``).

Both programs are stored programs (`metapbt.stored_programs`): a warm process loads
them from disk instead of tracing them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metapbt import envs
from metapbt.engine.agent import Agent, Rollout
from metapbt.engine.dqn_agent import DQNAgent
from metapbt.engine.ppo_agent import PPOAgent
from metapbt.engine.presets import PPOConfig
from metapbt.engine.trainer_base import BasePopulationTrainer
from metapbt.errors import ConfigError
from metapbt.stored_programs import StoredProgram


class PopulationTrainer(BasePopulationTrainer):
    """Trains ``size`` members on one contextual gymnax-API environment, all in one program.

    Args:
        env_id: Registered environment id.
        context: The context (planet name, ``"name=value"`` text or mapping) of every member,
            or a list of one context per member.
        config: Structural PPO settings (a preset).
        size: Number of members.
        agent: The learner (default: PPO of ``config``).

    Raises:
        ConfigError: For per-member contexts of the wrong length, or of an environment whose
            contexts are not environment parameters (Brax: the physics system holds gravity).
    """

    def __init__(
        self,
        env_id: str,
        context: str | Mapping[str, float] | Sequence[str | Mapping[str, float]] | None,
        config: PPOConfig,
        size: int,
        agent: Agent | None = None,
    ) -> None:
        spec = envs.spec(env_id)
        contexts = envs.member_contexts(env_id, context, size)
        self.env, self.env_params = spec.make(contexts[0])
        self.member_params = None
        if any(c != contexts[0] for c in contexts):
            if not spec.mixes_contexts:
                raise ConfigError(f"{env_id} cannot train several contexts in one program")
            stacked = [spec.make(c)[1] for c in contexts]
            self.member_params = jax.tree.map(lambda *x: jnp.stack(x), *stacked)
        super().__init__(
            config,
            size,
            self.env.action_space(self.env_params),
            self.env.observation_space(self.env_params),
            agent,
        )
        self.eval_steps = horizon(spec, self.env_params)
        # Everything the two programs close over derives from these (and the code).
        # A user's env or agent can change without our source or a library's version: such
        # programs are traced in every process, never stored (``owner`` None). Our agents'
        # code is in the key's source digest.
        storable = envs.versioned_code(env_id) and type(self.agent) in (PPOAgent, DQNAgent)
        owner = {
            "trainer": type(self).__name__,
            "agent": self.agent.name,
            "env": env_id,
            "contexts": [dict(c) for c in contexts],
            "config": dataclasses.asdict(config),
            "size": size,
        }
        self._train = StoredProgram(
            "train",
            jax.jit(self._train_impl, static_argnames="iterations"),
            owner if storable else None,
            output=lambda args: jax.tree.structure(args[0]),
        )
        self._evaluate = StoredProgram(
            "evaluate", jax.jit(self._evaluate_impl), owner if storable else None
        )

    def _fresh(self, keys: jax.Array) -> Any:
        # Not jitted: one program of every member's init deadlocked XLA's 2-thread CPU pool
        # (the batched QR of the orthogonal init waits on the pool's busy threads).
        return self._vmap_members(self._init_member, self.member_params, keys)

    def _init_member(self, key: jax.Array, env_params: Any) -> Any:
        k_net, k_env, k_run = jax.random.split(key, 3)
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(
            jax.random.split(k_env, self.config.num_envs), env_params
        )
        return self.agent.init_member(k_net, env_state, obs, k_run)

    def _train_iterations(self, state: Any, iterations: int) -> Any:
        return self._train(state, self.member_params, iterations=iterations)

    def evaluate_members(self, state: Any, keys: jax.Array) -> np.ndarray:
        """Evaluate every member in one jitted program (contract: the base class)."""
        params = self.agent.eval_params(state)
        return np.asarray(self._evaluate(params, keys, self.member_params), np.float64)

    # --- jitted internals -------------------------------------------------------------

    def _vmap_members(self, fn: Any, member_params: Any, *args: Any) -> Any:
        """``fn`` vmapped over the members, each given its env params: ``vmap(fn)(*args, params)``.

        ``params`` is the one context's (a constant) when ``member_params`` is ``None``, else one
        per member ``[P]`` (traced). ``envs.member_contexts`` is what gives each member its
        context in the first place.
        """
        if member_params is None:
            return jax.vmap(lambda *a: fn(*a, self.env_params))(*args)
        return jax.vmap(fn)(*args, member_params)

    def _train_impl(self, state: Any, member_params: Any, iterations: int) -> Any:
        def member(s: Any, env_params: Any) -> Any:
            step = lambda _, x: self._iteration(x, env_params)  # noqa: E731
            return jax.lax.fori_loop(0, iterations, step, s)

        return self._vmap_members(member, member_params, state)

    def _iteration(self, state: Any, env_params: Any) -> Any:
        state, rollout = self._rollout(state, env_params)
        return self.agent.learn(state, rollout, state.obs)

    def _rollout(self, state: Any, env_params: Any) -> tuple[Any, Rollout]:
        """``rollout_len`` steps of one member's ``E`` environments: ``rollout [T, E]``."""
        step_env = jax.vmap(self.env.step, in_axes=(0, 0, 0, None))
        acting = self.agent.act_params(state)

        def one(carry, _):
            env_state, obs, key = carry
            key, k_act, k_env = jax.random.split(key, 3)
            action, extras = self.agent.act(acting, obs, k_act)
            obs2, env_state, reward, term, trunc, _ = step_env(
                jax.random.split(k_env, self.config.num_envs),
                env_state,
                action,
                env_params,
            )
            # Truncation is treated as termination (no bootstrap), as most JAX PPO does.
            done = jnp.logical_or(term, trunc)
            return (env_state, obs2, key), Rollout(obs, action, reward, done, extras)

        (env_state, obs, key), rollout = jax.lax.scan(
            one, (state.env_state, state.obs, state.key), None, self.config.rollout_len
        )
        return state.replace(env_state=env_state, obs=obs, key=key), rollout

    def _evaluate_impl(self, params: Any, keys: jax.Array, member_params: Any) -> jax.Array:
        def member(p: Any, key: jax.Array, env_params: Any) -> jax.Array:
            n = self.config.eval_episodes
            k_reset, k_run = jax.random.split(key)
            obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(
                jax.random.split(k_reset, n), env_params
            )
            step_env = jax.vmap(self.env.step, in_axes=(0, 0, 0, None))

            def one(carry, k):
                env_state, obs, ret, alive = carry
                k_act, k_env = jax.random.split(k)
                obs, env_state, reward, term, trunc, _ = step_env(
                    jax.random.split(k_env, n),
                    env_state,
                    self.agent.eval_action(p, obs, k_act),
                    env_params,
                )
                ret = ret + reward * alive
                alive = alive * (1.0 - jnp.logical_or(term, trunc))
                return (env_state, obs, ret, alive), None

            init = (env_state, obs, jnp.zeros(n), jnp.ones(n))
            (_, _, ret, _), _ = jax.lax.scan(one, init, jax.random.split(k_run, self.eval_steps))
            finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(p)]))
            return jnp.where(finite, ret.mean(), jnp.nan)

        return self._vmap_members(member, member_params, params, keys)


def horizon(spec: Any, env_params: Any) -> int:
    """Steps of an evaluation episode at most: the params' time limit, else the spec's."""
    if hasattr(spec, "horizon"):
        return int(spec.horizon(env_params))
    return int(env_params.max_steps_in_episode)

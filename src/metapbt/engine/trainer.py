"""The population trainers: every member's PPO, vmapped over the population.

:class:`BasePopulationTrainer` holds what every trainer shares (hyperparameters as traced leaves,
exploit/explore decisions, the jitted PPO update of one rollout); :class:`PopulationTrainer` runs
the whole interval, environments included, in one jitted program over gymnax environments, and
:class:`~metapbt.engine.host_trainer.HostPopulationTrainer` steps host environments (Box2D).
:func:`make_trainer` picks the one that fits an environment.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metapbt import envs
from metapbt.engine.networks import ActorCritic
from metapbt.engine.ppo import (
    TUNABLE,
    MemberState,
    Transition,
    gae,
    make_optimizer,
    ppo_loss,
    update_kl_coeff,
)
from metapbt.engine.presets import PPOConfig
from metapbt.errors import ConfigError
from metapbt.population.decisions import Clone, Decision

DEFAULT_HPARAMS = {"lambda": 0.95, "clip": 0.2}
"""Values of untuned hyperparameters (``ent_coef`` comes from the preset, ``lr`` must be tuned
or set explicitly in every config)."""


class BasePopulationTrainer(abc.ABC):
    """Trains ``size`` PPO members; subclasses decide where the environments step.

    Lifecycle: ``init`` fresh members, then per interval ``train``, ``evaluate`` and ``apply``
    the population's decisions. The state is a :class:`MemberState` stacked ``[P]``.

    Args:
        config: Structural PPO settings (a preset).
        size: Population size.
        action_space: The environment's action space (gymnax or gymnasium: discrete if it has
            ``n``).
    """

    def __init__(self, config: PPOConfig, size: int, action_space: Any) -> None:
        self.config = config
        self.size = size
        continuous = not hasattr(action_space, "n")
        self.network = ActorCritic(
            action_dim=int(np.prod(action_space.shape)) if continuous else int(action_space.n),
            continuous=continuous,
            hidden=config.hidden,
            activation=config.activation,
        )
        self.optimizer = make_optimizer(config)

    def check_space(self, names: Sequence[str]) -> None:
        """Raise unless every tuned hyperparameter is one the engine can change."""
        unknown = [n for n in names if n not in TUNABLE]
        if unknown:
            raise ConfigError(f"the engine cannot tune {unknown}; tunable: {list(TUNABLE)}")

    def init(self, key: jax.Array, configs: Sequence[Mapping[str, float]]) -> MemberState:
        """Fresh members ``[P]`` with the given hyperparameters."""
        if len(configs) != self.size:
            raise ConfigError(f"expected {self.size} configs, got {len(configs)}")
        self.check_space(list(configs[0]))
        if "lr" not in configs[0]:
            raise ConfigError("every config needs an 'lr' (tuned or fixed)")
        return self.set_hparams(self._fresh(key), configs)

    @abc.abstractmethod
    def _fresh(self, key: jax.Array) -> MemberState:
        """Fresh members ``[P]`` (untuned hyperparameters at their defaults)."""

    def _new_member(
        self, k_net: jax.Array, env_state: Any, obs: jax.Array, key: jax.Array
    ) -> MemberState:
        """One member's state around its first observations ``obs [E, obs_dim]``."""
        params = self.network.init(k_net, obs[:1])
        hparams = {k: jnp.float32(v) for k, v in DEFAULT_HPARAMS.items()}
        hparams["ent_coef"] = jnp.float32(self.config.ent_coef)
        return MemberState(
            params,
            self.optimizer.init(params),
            env_state,
            obs,
            key,
            jnp.float32(self.config.kl_coeff),
            hparams,
        )

    def set_hparams(
        self, state: MemberState, configs: Sequence[Mapping[str, float]]
    ) -> MemberState:
        """Write each member's hyperparameters into the (traced) state."""
        hparams = dict(state.hparams)
        for name in configs[0]:
            values = jnp.asarray([float(c[name]) for c in configs], jnp.float32)
            if name == "lr":
                # A new dict: the optimiser state's dict is shared with the caller's state.
                injected = {**state.opt_state.hyperparams, "learning_rate": values}
                state = _replace(state, opt_state=state.opt_state._replace(hyperparams=injected))
            else:
                hparams[name] = values
        return _replace(state, hparams=hparams)

    def apply(self, state: MemberState, decisions: Sequence[Decision]) -> MemberState:
        """Clone donors' weights and optimiser state, then set every member's new config."""
        index = np.array([d.source if isinstance(d, Clone) else d.member for d in decisions])
        take = partial(jax.tree.map, lambda leaf: leaf[index])
        state = _replace(
            state,
            params=take(state.params),
            opt_state=take(state.opt_state),
            kl_coeff=state.kl_coeff[index],
        )
        return self.set_hparams(state, [d.config for d in decisions])

    def train(self, state: MemberState, steps: int) -> MemberState:
        """Train every member for ``steps`` environment steps (a multiple of the batch)."""
        if steps % self.config.batch_size:
            raise ConfigError(
                f"interval {steps} must be a multiple of the batch size "
                f"{self.config.batch_size} ({self.config.num_envs} envs x "
                f"{self.config.rollout_len} steps)"
            )
        return self._train_iterations(state, steps // self.config.batch_size)

    @abc.abstractmethod
    def _train_iterations(self, state: MemberState, iterations: int) -> MemberState:
        """Run ``iterations`` rollout-and-update iterations of every member."""

    @abc.abstractmethod
    def evaluate(self, state: MemberState, key: jax.Array) -> np.ndarray:
        """Mean return of ``eval_episodes`` stochastic episodes per member, ``[P]``.

        A member whose parameters hold a NaN or infinity has diverged: its reward is NaN (even
        where the environment would still pay for its garbage actions), so the population
        replaces it and never copies it.
        """

    def _update(self, state: MemberState, traj: Transition, last_value: jax.Array) -> MemberState:
        """One member's PPO update on its rollout ``traj [T, E]`` (``last_value [E]``)."""
        adv, ret = gae(
            traj.reward,
            traj.value,
            traj.done,
            last_value,
            self.config.gamma,
            state.hparams["lambda"],
        )
        batch = (traj.obs, traj.action, traj.log_prob, adv, ret)
        flat = jax.tree.map(lambda x: x.reshape((-1, *x.shape[2:])), batch)
        key, k_perm = jax.random.split(state.key)
        n_mb = self.config.batch_size // self.config.minibatch_size

        def epoch(carry, k):
            params, opt_state = carry
            perm = jax.random.permutation(k, self.config.batch_size)
            mbs = jax.tree.map(lambda x: x[perm].reshape((n_mb, -1, *x.shape[1:])), flat)

            def step(c, mb):
                p, o = c
                grads, info = jax.grad(ppo_loss, has_aux=True)(
                    p, self.network.apply, mb, state.hparams, state.kl_coeff, self.config
                )
                updates, o = self.optimizer.update(grads, o, p)
                return (optax.apply_updates(p, updates), o), info["kl"]

            (params, opt_state), kls = jax.lax.scan(step, (params, opt_state), mbs)
            return (params, opt_state), kls.mean()

        (params, opt_state), kls = jax.lax.scan(
            epoch,
            (state.params, state.opt_state),
            jax.random.split(k_perm, self.config.epochs),
        )
        kl_coeff = update_kl_coeff(state.kl_coeff, kls[-1], self.config.kl_target)
        return _replace(state, params=params, opt_state=opt_state, key=key, kl_coeff=kl_coeff)


class PopulationTrainer(BasePopulationTrainer):
    """Trains ``size`` PPO members on one contextual gymnax environment, all in one program.

    Args:
        env_id: Registered environment id.
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
        self.env, self.env_params = envs.make(env_id, context)
        super().__init__(config, size, self.env.action_space(self.env_params))
        self.eval_steps = int(self.env_params.max_steps_in_episode)
        self._train = jax.jit(self._train_impl, static_argnames="iterations")
        self._evaluate = jax.jit(self._evaluate_impl)

    def _fresh(self, key: jax.Array) -> MemberState:
        return jax.vmap(self._init_member)(jax.random.split(key, self.size))

    def _init_member(self, key: jax.Array) -> MemberState:
        k_net, k_env, k_run = jax.random.split(key, 3)
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(
            jax.random.split(k_env, self.config.num_envs), self.env_params
        )
        return self._new_member(k_net, env_state, obs, k_run)

    def _train_iterations(self, state: MemberState, iterations: int) -> MemberState:
        return self._train(state, iterations=iterations)

    def evaluate(self, state: MemberState, key: jax.Array) -> np.ndarray:
        """Evaluate every member in one jitted program (contract: the base class)."""
        keys = jax.random.split(key, self.size)
        return np.asarray(self._evaluate(state.params, keys), np.float64)

    # --- jitted internals -------------------------------------------------------------

    def _train_impl(self, state: MemberState, iterations: int) -> MemberState:
        def member(s: MemberState) -> MemberState:
            return jax.lax.fori_loop(0, iterations, lambda _, x: self._iteration(x), s)

        return jax.vmap(member)(state)

    def _iteration(self, state: MemberState) -> MemberState:
        return self._update(*self._rollout(state))

    def _rollout(self, state: MemberState) -> tuple[MemberState, Transition, jax.Array]:
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
        return _replace(state, env_state=env_state, obs=obs, key=key), traj, last_value

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


def _replace(state: MemberState, **changes: Any) -> MemberState:
    import dataclasses

    return dataclasses.replace(state, **changes)


def make_trainer(
    env_id: str,
    context: str | Mapping[str, float] | None,
    config: PPOConfig,
    size: int,
) -> BasePopulationTrainer:
    """The trainer that fits ``env_id``: in-JAX for gymnax envs, host-stepped for Box2D ones.

    Args:
        env_id: Registered environment id.
        context: The context (planet name, ``"name=value"`` text or mapping).
        config: Structural PPO settings (a preset).
        size: Population size.
    """
    if envs.runs_on_host(env_id):
        # host_trainer imports this module: import it here, not at the top.
        from metapbt.engine.host_trainer import HostPopulationTrainer

        return HostPopulationTrainer(env_id, context, config, size)
    return PopulationTrainer(env_id, context, config, size)

"""What every population trainer shares: members' state, traced hyperparameters, decisions.

A trainer runs ``size`` PPO members side by side; its subclasses decide where the environments
step (:mod:`metapbt.engine.trainer`: inside one jitted program; :mod:`metapbt.engine.host_trainer`:
on the host). The PPO update itself is the pure :func:`metapbt.engine.ppo.ppo_update`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metapbt.engine import tuning
from metapbt.engine.networks import ActorCritic, bounds_scaling, torso_for
from metapbt.engine.ppo import MemberState, make_optimizer, ppo_update
from metapbt.engine.presets import PPOConfig
from metapbt.errors import ConfigError
from metapbt.population.decisions import Clone, Decision

DEFAULT_HPARAMS = {"lambda": 0.95, "clip": 0.2}
"""Values of untuned hyperparameters (``ent_coef`` comes from the preset, ``lr`` must be tuned
or set explicitly in every config)."""


class BasePopulationTrainer(abc.ABC):
    """Trains ``size`` PPO members; subclasses decide where the environments step.

    Lifecycle: ``init`` fresh members, then per interval ``train``, ``evaluate`` and ``apply``
    the population's decisions. The state is a :class:`MemberState` stacked ``[P]``; the
    trainer itself holds no state of a run (only its environments' factories and compiled
    programs), so it may train any state it returned.

    Args:
        config: Structural PPO settings (a preset).
        size: Number of members (a batch of runs: runs x population).
        action_space: The environment's action space (gymnax or gymnasium: discrete if it has
            ``n``).
        observation_space: Its observation space (``low``, ``high``); read only when the
            preset's ``scale_obs`` is on.
    """

    def __init__(
        self, config: PPOConfig, size: int, action_space: Any, observation_space: Any
    ) -> None:
        self.config = config
        self.size = size
        continuous = not hasattr(action_space, "n")
        center, scale = (
            bounds_scaling(observation_space.low, observation_space.high)
            if config.scale_obs
            else (None, None)
        )
        self.network = ActorCritic(
            action_dim=int(np.prod(action_space.shape)) if continuous else int(action_space.n),
            continuous=continuous,
            hidden=config.hidden,
            activation=config.activation,
            obs_center=center,
            obs_scale=scale,
            normalize_obs=config.normalize_obs,
            torso=config.torso or torso_for(observation_space.shape),
            obs_ndim=len(self._obs_shape(observation_space)),
        )
        self.optimizer = make_optimizer(config)
        # One member's PPO update: (state, traj [T, E], last_value [E]) -> state.
        self.update = partial(
            ppo_update, apply_fn=self.network.apply, optimizer=self.optimizer, config=config
        )

    def _obs_shape(self, observation_space: Any) -> tuple[int, ...]:
        """One observation's shape as the networks get it (the host trainer flattens)."""
        return tuple(observation_space.shape)

    def check_space(self, names: Sequence[str]) -> None:
        """Raise unless every tuned hyperparameter is one the engine can change."""
        tuning.check_names(names)

    def init(self, key: jax.Array, configs: Sequence[Mapping[str, float]]) -> MemberState:
        """Fresh members ``[P]`` with the given hyperparameters (member keys split from ``key``)."""
        return self.init_members(jax.random.split(key, len(configs)), configs)

    def init_members(self, keys: jax.Array, configs: Sequence[Mapping[str, float]]) -> MemberState:
        """Fresh members ``[P]``, member ``i`` from ``keys[i]`` with ``configs[i]``.

        A batch of runs concatenates each run's member keys (split from its own seed as in
        :meth:`init`), so every run starts as it would alone.
        """
        if len(configs) != self.size or len(keys) != self.size:
            raise ConfigError(
                f"expected {self.size} configs and keys, got {len(configs)} and {len(keys)}"
            )
        self.check_space(list(configs[0]))
        if "lr" not in configs[0]:
            raise ConfigError("every config needs an 'lr' (tuned or fixed)")
        return self.set_hparams(self._fresh(keys), configs)

    @abc.abstractmethod
    def _fresh(self, keys: jax.Array) -> MemberState:
        """Fresh members ``[P]`` from member keys ``[P]`` (untuned hyperparameters at defaults)."""

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
        """Write each member's hyperparameters into the (traced) state.

        Raises:
            ConfigError: If a tuned count does not fit this trainer's program
                (:func:`metapbt.engine.tuning.check_values`).
        """
        tuning.check_values(self.config, configs)
        hparams = dict(state.hparams)
        for name in configs[0]:
            values = jnp.asarray([float(c[name]) for c in configs], jnp.float32)
            if name == "lr":
                # A new dict: the optimiser state's dict is shared with the caller's state.
                injected = {**state.opt_state.hyperparams, "learning_rate": values}
                state = state.replace(opt_state=state.opt_state._replace(hyperparams=injected))
            else:
                hparams[name] = values
        return state.replace(hparams=hparams)

    def apply(self, state: MemberState, decisions: Sequence[Decision]) -> MemberState:
        """Clone donors' weights and optimiser state, then set every member's new config.

        Each slot keeps its environments: training goes on without restarting episodes.
        """
        index = np.array([d.source if isinstance(d, Clone) else d.member for d in decisions])
        take = partial(jax.tree.map, lambda leaf: leaf[index])
        state = state.replace(
            params=take(state.params),
            opt_state=take(state.opt_state),
            kl_coeff=state.kl_coeff[index],
        )
        return self.set_hparams(state, [d.config for d in decisions])

    def split(self, state: MemberState, parts: int) -> list[MemberState]:
        """The state of ``parts`` equal runs, in order (one part: ``state`` itself).

        Only the leaves are split: a host trainer's environments in progress stay with
        ``state`` (each part's handle is empty, and a part trained alone starts fresh episodes
        from its members' keys, as a resumed run does).
        """
        if parts == 1:
            return [state]
        size = self.size // parts
        return [
            jax.tree.map(lambda leaf, i=i: leaf[i * size : (i + 1) * size], state)
            for i in range(parts)
        ]

    def join(self, states: Sequence[MemberState]) -> MemberState:
        """One state of the runs ``states``, members in order (the inverse of :meth:`split`)."""
        if len(states) == 1:
            return states[0]
        return jax.tree.map(lambda *leaves: jnp.concatenate(leaves), *states)

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

    def evaluate(self, state: MemberState, key: jax.Array) -> np.ndarray:
        """Mean return of ``eval_episodes`` stochastic episodes per member, ``[P]``.

        Member ``i`` evaluates with the ``i``-th key split from ``key``. A member whose
        parameters hold a NaN or infinity has diverged: its reward is NaN (even where the
        environment would still pay for its garbage actions), so the population replaces it
        and never copies it.
        """
        return self.evaluate_members(state, jax.random.split(key, self.size))

    @abc.abstractmethod
    def evaluate_members(self, state: MemberState, keys: jax.Array) -> np.ndarray:
        """:meth:`evaluate` with one key per member, ``keys [P]``."""

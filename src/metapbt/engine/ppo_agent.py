"""PPO as an `Agent`: its networks, optimiser and update.

The maths is `metapbt.engine.ppo` (pure functions); this class holds what a member's
PPO needs besides its state (the networks, the optimiser, the preset) and says how a clone and
a new configuration are written into the stacked state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from metapbt.engine import tuning
from metapbt.engine.agent import Rollout, write_hparams
from metapbt.engine.networks import ActorCritic, bounds_scaling, torso_for, update_obs_stats
from metapbt.engine.ppo import ApplyFn, MemberState, Transition, make_optimizer, ppo_update
from metapbt.engine.presets import PPOConfig
from metapbt.population.space import SearchSpace

DEFAULT_HPARAMS = {"lambda": 0.95, "clip": 0.2}
"""Values of untuned hyperparameters (``ent_coef`` comes from the preset, ``lr`` must be tuned
or set explicitly in every config)."""


class PPOAgent:
    """PPO with separate policy and value networks; every tuned value a traced leaf.

    Args:
        config: Structural PPO settings (a preset, through
            `metapbt.engine.tuning.for_space` when counts are tuned).
        action_space: The environment's action space (discrete if it has ``n``).
        observation_space: Its observation space (``low``/``high`` read when the preset's
            ``scale_obs`` is on).
        obs_shape: One observation's shape as the networks get it (default: the space's).
    """

    name = "ppo"
    tunable: Mapping[str, str] = tuning.TUNABLE
    required: tuple[str, ...] = ("lr",)  # the optimiser's injected learning rate has no default

    def __init__(
        self,
        config: PPOConfig,
        action_space: Any,
        observation_space: Any,
        obs_shape: tuple[int, ...] | None = None,
    ) -> None:
        self.config = config
        self._spaces = (action_space, observation_space, obs_shape)
        shape = tuple(observation_space.shape) if obs_shape is None else tuple(obs_shape)
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
            obs_ndim=len(shape),
        )
        # flax types Module.apply for a call with ``mutable`` too, which returns (output,
        # state); called without it, as here, it returns the output alone.
        self._apply = cast(ApplyFn, self.network.apply)
        self.optimizer = make_optimizer(config)
        # One member's PPO update: (state, traj [T, E], last_value [E]) -> state.
        self.update = partial(
            ppo_update, apply_fn=self._apply, optimizer=self.optimizer, config=config
        )

    def for_space(self, space: SearchSpace) -> PPOAgent:
        """This agent with the structural bounds tuning ``space`` needs (contract: Agent)."""
        config = tuning.for_space(self.config, space)
        return self if config == self.config else PPOAgent(config, *self._spaces)

    def check_names(self, names: Sequence[str]) -> None:
        """Raise unless every name is one PPO can tune."""
        tuning.check_names(names)

    def init_member(
        self, key: jax.Array, env_state: Any, obs: jax.Array, run_key: jax.Array
    ) -> MemberState:
        """One member's state around its first observations ``obs [E, ...]``."""
        params = self.network.init(key, obs[:1])
        hparams = {k: jnp.float32(v) for k, v in DEFAULT_HPARAMS.items()}
        hparams["ent_coef"] = jnp.float32(self.config.ent_coef)
        return MemberState(
            params,
            self.optimizer.init(params),
            env_state,
            obs,
            run_key,
            jnp.float32(self.config.kl_coeff),
            hparams,
        )

    def act_params(self, state: MemberState) -> Any:
        """The networks' parameters (acting needs nothing else of the member)."""
        return state.params

    def act(self, params: Any, obs: jax.Array, key: jax.Array) -> tuple[jax.Array, Any]:
        """A sampled action and ``(value, log_prob)`` per environment."""
        dist, value = self._apply(params, obs)
        action = dist.sample(seed=key)
        return action, (value, dist.log_prob(action))

    def learn(self, state: MemberState, rollout: Rollout, last_obs: jax.Array) -> MemberState:
        """GAE and minibatch epochs on the rollout (`metapbt.engine.ppo.ppo_update`).

        With ``normalize_obs`` the running statistics take the rollout's observations first
        (after the bootstrap value is computed with the statistics the rollout acted on).
        """
        _, last_value = self._apply(state.params, last_obs)
        if self.config.normalize_obs:
            state = state.replace(params=update_obs_stats(state.params, rollout.obs))
        value, log_prob = rollout.extras
        obs, action, reward, done = rollout.obs, rollout.action, rollout.reward, rollout.done
        traj = Transition(obs, action, reward, done, value, log_prob)
        return self.update(state, traj, last_value)

    def eval_params(self, state: MemberState) -> Any:
        """The networks' parameters."""
        return state.params

    def eval_action(self, params: Any, obs: jax.Array, key: jax.Array) -> jax.Array:
        """A sampled action (evaluation keeps exploring, as the reference's did)."""
        dist, _ = self._apply(params, obs)
        return dist.sample(seed=key)

    def set_hparams(self, state: MemberState, configs: Sequence[Mapping[str, Any]]) -> MemberState:
        """Write each member's hyperparameters into the (traced) state.

        Raises:
            ConfigError: If a tuned count does not fit this agent's program
                (`metapbt.engine.tuning.check_values`).
        """
        tuning.check_values(self.config, configs)
        return write_hparams(state, configs)

    def clone(self, state: MemberState, index: np.ndarray) -> MemberState:
        """Donors' weights, optimiser state and KL coefficient; hyperparameters stay."""
        take = partial(jax.tree.map, lambda leaf: leaf[index])
        return state.replace(
            params=take(state.params),
            opt_state=take(state.opt_state),
            kl_coeff=state.kl_coeff[index],
        )

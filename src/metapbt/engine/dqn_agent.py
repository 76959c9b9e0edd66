"""Double DQN as an `Agent`, a replay buffer per member.

The maths is `metapbt.engine.dqn` (pure functions). Each member's state carries its online
and target networks, its optimiser state and its own replay buffer (a fixed-shape ring), so a
population's rollouts, buffer writes, gradient steps and target updates all run vmapped over
the members in one program, like PPO's.

Why not flashbax: its buffers are fixed-shape pytrees too and would vmap, but a trajectory
buffer adds a time axis per environment and a sampling rule (sequences) that one-step DQN does
not need; the ring here is four scatter/gather lines whose shapes and clone semantics are ours
to test.

Tuned without recompiling, each member its own traced value: ``lr`` (Adam's, injected),
``gamma``, ``tau`` (Polyak rate per gradient step), ``eps_final`` and ``eps_decay`` (the
exploration schedule), and ``updates`` (gradient steps per iteration: the program runs
``DQNConfig.max_updates`` and masks each member's steps beyond its own, as PPO's ``epochs``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metapbt.engine import dqn
from metapbt.engine.agent import Rollout, write_hparams
from metapbt.engine.dqn_presets import DQNConfig
from metapbt.engine.networks import QNetwork, torso_for
from metapbt.engine.tuning import values_of
from metapbt.errors import ConfigError
from metapbt.population.space import Categorical, Float, Int, SearchSpace

TUNABLE: dict[str, str] = {
    "lr": "Adam's learning rate",
    "gamma": "discount factor, in (0, 1]",
    "tau": "Polyak rate of the target network per gradient step, in (0, 1]",
    "eps_final": "exploration rate after the decay, in [0, 1]",
    "eps_decay": "fraction of the exploration horizon over which epsilon falls, in [0, 1]",
    "updates": "gradient steps per iteration (Int, or a Categorical of ints)",
}
"""Hyperparameters the DQN agent can tune during training, with what each is."""

UNIT = {"gamma": (0.0, 1.0), "tau": (0.0, 1.0), "eps_final": (0.0, 1.0), "eps_decay": (0.0, 1.0)}
"""Closed bounds every value of these must lie in (``gamma`` and ``tau`` also above 0)."""


def default_space() -> SearchSpace:
    """DQN's default search space.

    ``lr`` log in [1e-5, 1e-2], ``tau`` log in [1e-3, 1], ``gamma`` in [0.9, 0.999] and
    ``eps_final`` in [0.01, 0.2].
    """
    return SearchSpace(
        {
            "lr": Float(1e-5, 1e-2, log=True),
            "tau": Float(1e-3, 1.0, log=True),
            "gamma": Float(0.9, 0.999),
            "eps_final": Float(0.01, 0.2),
        }
    )


def check_names(names: Sequence[str]) -> None:
    """Raise unless every name is one DQN can tune."""
    unknown = [n for n in names if n not in TUNABLE]
    if unknown:
        raise ConfigError(f"the dqn agent cannot tune {unknown}; tunable: {list(TUNABLE)}")


def for_space(config: DQNConfig, space: SearchSpace) -> DQNConfig:
    """``config`` with the structural bound tuning ``space`` needs (``max_updates``).

    Raises:
        ConfigError: If ``space`` lacks ``lr``, names what DQN cannot tune, or gives a value
            outside its range (``gamma``/``tau`` in (0, 1], epsilons in [0, 1], ``updates``
            positive whole numbers).
    """
    check_names(space.names)
    if "lr" not in space.names:
        raise ConfigError(f"the dqn agent needs 'lr' in the search space, got {space.names}")
    max_updates = None
    for name in space.names:
        param = space[name]
        if isinstance(param, Categorical) and not all(
            isinstance(c, int | float) and not isinstance(c, bool) for c in param.choices
        ):
            raise ConfigError(f"the dqn agent takes numbers for {name!r}, got {param}")
        values = values_of(param)
        if name in UNIT:
            low, high = UNIT[name]
            open_low = name in ("gamma", "tau")
            if min(values) < low or (open_low and min(values) <= low) or max(values) > high:
                interval = "(0, 1]" if open_low else "[0, 1]"
                raise ConfigError(f"{name!r} must lie in {interval}, got {param}")
        if name == "updates":
            integral = isinstance(param, Int) or all(isinstance(v, int) for v in values)
            if not integral or min(values) < 1:
                raise ConfigError(f"'updates' must be positive whole numbers, got {param}")
            max_updates = int(max(values))
    if max_updates is None or max_updates == config.max_updates:
        return config
    return replace(config, max_updates=max_updates)


@partial(
    jax.tree_util.register_dataclass,
    data_fields=[
        "params",
        "target_params",
        "opt_state",
        "buffer",
        "steps",
        "env_state",
        "obs",
        "key",
        "hparams",
    ],
    meta_fields=[],
)
@dataclass(frozen=True)
class DQNState:
    """Everything one DQN member carries between iterations (a pytree; stacked ``[P]``).

    Attributes:
        params: The online Q-network's parameters.
        target_params: The target network's.
        opt_state: Optimiser state (its ``hyperparams["learning_rate"]`` is the traced ``lr``).
        buffer: The member's replay buffer (`metapbt.engine.dqn.ReplayBuffer`).
        steps: Environment steps the member has taken (float32: the exploration schedule's
            clock).
        env_state: The trainer's environments mid-episode.
        obs: ``[E, ...]`` current observations.
        key: The member's PRNG key.
        hparams: Traced ``gamma``, ``tau``, ``eps_final``, ``eps_decay``, ``updates``.
    """

    params: Any
    target_params: Any
    opt_state: Any
    buffer: dqn.ReplayBuffer
    steps: jax.Array
    env_state: Any
    obs: jax.Array
    key: jax.Array
    hparams: dict[str, jax.Array]

    def replace(self, **changes: Any) -> DQNState:
        """A copy with some fields changed."""
        return replace(self, **changes)


class DQNAgent:
    """Double DQN with a replay buffer per member; every tuned value a traced leaf.

    Args:
        config: Structural DQN settings (a preset of
            `metapbt.engine.dqn_presets.DQN_PRESETS`).
        action_space: The environment's action space (discrete: it must have ``n``).
        observation_space: Its observation space.
        obs_shape: One observation's shape as the network gets it (default: the space's).

    Raises:
        ConfigError: If the actions are not discrete.
    """

    name = "dqn"
    tunable: Mapping[str, str] = TUNABLE
    required: tuple[str, ...] = ("lr",)

    def __init__(
        self,
        config: DQNConfig,
        action_space: Any,
        observation_space: Any,
        obs_shape: tuple[int, ...] | None = None,
    ) -> None:
        if not hasattr(action_space, "n"):
            raise ConfigError(
                "the dqn agent takes discrete actions only; this environment's actions are "
                f"continuous ({action_space}); use the ppo agent"
            )
        self.config = config
        self._spaces = (action_space, observation_space, obs_shape)
        self.obs_shape = tuple(observation_space.shape) if obs_shape is None else tuple(obs_shape)
        self.network = QNetwork(
            action_dim=int(action_space.n),
            hidden=config.hidden,
            activation=config.activation,
            dueling=config.dueling,
            torso=config.torso or torso_for(observation_space.shape),
            obs_ndim=len(self.obs_shape),
        )
        # flax types Module.apply for a call with ``mutable`` too, which returns (output,
        # state); called without it, as here, it returns the Q-values alone.
        self._apply = cast(dqn.QFn, self.network.apply)
        self.optimizer = _make_optimizer(config)

    # --- what a space may tune -----------------------------------------------------------

    def check_names(self, names: Sequence[str]) -> None:
        """Raise unless every name is one DQN can tune."""
        check_names(names)

    def for_space(self, space: SearchSpace) -> DQNAgent:
        """This agent with the structural bound tuning ``space`` needs (`for_space`)."""
        config = for_space(self.config, space)
        return self if config == self.config else DQNAgent(config, *self._spaces)

    # --- one member (vmapped by the trainer) ---------------------------------------------

    def init_member(
        self, key: jax.Array, env_state: Any, obs: jax.Array, run_key: jax.Array
    ) -> DQNState:
        """One member's state around its first observations ``obs [E, ...]``."""
        c = self.config
        params = self.network.init(key, obs[:1])
        hparams = {
            "gamma": jnp.float32(c.gamma),
            "tau": jnp.float32(c.tau),
            "eps_final": jnp.float32(c.eps_final),
            "eps_decay": jnp.float32(c.eps_decay),
            "updates": jnp.float32(c.updates),
        }
        return DQNState(
            params,
            params,
            self.optimizer.init(params),
            dqn.buffer_init(c.buffer_size, self.obs_shape),
            jnp.float32(0.0),
            env_state,
            obs,
            run_key,
            hparams,
        )

    def act_params(self, state: DQNState) -> tuple[Any, jax.Array]:
        """The online network and this iteration's exploration rate."""
        h = state.hparams
        decay_steps = h["eps_decay"] * self.config.explore_steps
        eps = dqn.epsilon(state.steps, self.config.eps_start, h["eps_final"], decay_steps)
        return state.params, eps

    def act(
        self, params: tuple[Any, jax.Array], obs: jax.Array, key: jax.Array
    ) -> tuple[jax.Array, Any]:
        """An epsilon-greedy action per environment (no extras)."""
        weights, eps = params
        return dqn.epsilon_greedy(key, self._apply(weights, obs), eps), None

    def learn(self, state: DQNState, rollout: Rollout, last_obs: jax.Array) -> DQNState:
        """Store the rollout's ``T * E`` transitions, then up to ``max_updates`` gradient steps.

        A member takes its own ``updates`` steps (the rest are masked), none before its buffer
        holds ``learning_starts`` transitions; the target network follows each step by
        ``tau``.
        """
        c = self.config
        next_obs = jnp.concatenate([rollout.obs[1:], last_obs[None]], axis=0)
        flat = lambda x: x.reshape((-1, *x.shape[2:]))  # noqa: E731  [T, E, ...] -> [T*E, ...]
        buffer = dqn.buffer_add(
            state.buffer,
            flat(rollout.obs),
            flat(rollout.action),
            flat(rollout.reward),
            flat(next_obs),
            flat(rollout.done),
        )
        ready = buffer.count >= c.learning_starts
        gamma, tau = state.hparams["gamma"], state.hparams["tau"]
        key, k_updates = jax.random.split(state.key)
        loss_fn = partial(dqn.td_loss, self._apply)

        def step(i: jax.Array, carry: tuple[Any, Any, Any]) -> tuple[Any, Any, Any]:
            params, target, opt_state = carry
            batch = dqn.buffer_sample(buffer, jax.random.fold_in(k_updates, i), c.sample_size)
            grads = jax.grad(loss_fn)(params, target, batch, gamma)
            updates, new_opt = self.optimizer.update(grads, opt_state, params)
            new_params = optax.apply_updates(params, updates)
            new_target = dqn.polyak(target, new_params, tau)
            take = ready & (i < state.hparams["updates"])
            keep = lambda new, old: jax.tree.map(  # noqa: E731
                lambda n, o: jnp.where(take, n, o), new, old
            )
            return keep(new_params, params), keep(new_target, target), keep(new_opt, opt_state)

        steps = c.max_updates or c.updates
        params, target, opt_state = jax.lax.fori_loop(
            0, steps, step, (state.params, state.target_params, state.opt_state)
        )
        return state.replace(
            params=params,
            target_params=target,
            opt_state=opt_state,
            buffer=buffer,
            steps=state.steps + rollout.action.shape[0] * rollout.action.shape[1],
            key=key,
        )

    def eval_params(self, state: DQNState) -> Any:
        """The online network's parameters."""
        return state.params

    def eval_action(self, params: Any, obs: jax.Array, key: jax.Array) -> jax.Array:
        """The greedy action (evaluation does not explore)."""
        return jnp.argmax(self._apply(params, obs), axis=-1)

    # --- the population (not vmapped) ----------------------------------------------------

    def set_hparams(self, state: DQNState, configs: Sequence[Mapping[str, Any]]) -> DQNState:
        """Write each member's hyperparameters into the (traced) state.

        Raises:
            ConfigError: If a member's ``updates`` is not a whole number in
                ``1..max_updates`` (or ``updates`` is tuned on a config built without
                `for_space`).
        """
        names = list(configs[0])
        if "updates" in names:
            bound = self.config.max_updates
            if bound is None:
                raise ConfigError(
                    "tuning 'updates' needs an agent built for the search space: "
                    "agent.for_space(space)"
                )
            bad = [c["updates"] for c in configs if not _whole_in(c["updates"], 1, bound)]
            if bad:
                raise ConfigError(f"updates {bad} outside 1..{bound} (the program's max_updates)")
        return write_hparams(state, configs)

    def clone(self, state: DQNState, index: np.ndarray) -> DQNState:
        """Donors' online and target weights and optimiser state (and buffers).

        The replay buffer goes with the weights when ``clone_buffer`` is on; hyperparameters,
        step counts and environments stay.
        """
        take = partial(jax.tree.map, lambda leaf: leaf[index])
        cloned = state.replace(
            params=take(state.params),
            target_params=take(state.target_params),
            opt_state=take(state.opt_state),
        )
        return cloned.replace(buffer=take(state.buffer)) if self.config.clone_buffer else cloned


def _make_optimizer(config: DQNConfig) -> optax.GradientTransformation:
    """Adam (after global-norm clipping, if set) with an injectable learning rate."""

    def build(learning_rate: float) -> optax.GradientTransformation:
        adam = optax.adam(learning_rate)
        if config.max_grad_norm is None:
            return adam
        return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), adam)

    return optax.inject_hyperparams(build)(learning_rate=1e-3)


def _whole_in(value: Any, low: int, high: int) -> bool:
    return float(value) == int(value) and low <= int(value) <= high

"""A population trainer for environments that step on the host (Box2D LunarLander, gymnasium).

The environments cannot run inside JAX, so one iteration of every member is:

1. ``rollout_len`` host steps; at each, one jitted call vmapped over members asks the agent for
   the actions (and what it learns from: PPO's values and log-probs) of all ``P x E``
   environments, then the host steps them. An
   episode that ends (terminated or truncated) is reset at once and its last transition is
   marked done, so GAE never bootstraps across it: truncation is treated as termination, as in
   `PopulationTrainer`.
2. The agent's learning (PPO: `ppo_update`), jitted and vmapped over
   members, on the ``[P, T, E]`` rollout: the same traced per-member hyperparameters and state
   as in the JAX trainer.

The environments in progress belong to the state, in its ``env_state`` (`Episodes`):
``train`` hands them on from the state it trains to the state it returns (a state derived by
``apply``/``set_hparams`` shares them), and a state whose episodes have moved on, or that was
restored from a checkpoint, starts fresh episodes seeded from each member's key. So training an
old state twice gives the same result, and a resumed run is reproducible, but not bit-identical
to the uninterrupted one, whose episodes ran on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metapbt import envs
from metapbt.engine.agent import Agent, Rollout
from metapbt.engine.presets import PPOConfig
from metapbt.engine.trainer_base import BasePopulationTrainer
from metapbt.envs.wrappers import is_image
from metapbt.errors import ConfigError

logger = logging.getLogger(__name__)


class Episodes:
    """Every member's training environments mid-episode: ``P x E`` host environments.

    One state at a time owns them (see the module docstring). A pytree without leaves: any JAX
    transformation or flatten/unflatten (a checkpoint) of it gives an empty handle, so the
    environments never enter a compiled program or a file.

    Args:
        environments: The ``P * E`` environments, member-major; ``None``: an empty handle.
    """

    def __init__(self, environments: list[Any] | None = None) -> None:
        self._environments = environments

    @property
    def live(self) -> bool:
        """Whether the handle still holds its environments."""
        return self._environments is not None

    def take(self) -> list[Any] | None:
        """The environments (``None`` if none), leaving this handle empty."""
        environments, self._environments = self._environments, None
        return environments


jax.tree_util.register_pytree_node(Episodes, lambda _: ((), None), lambda _aux, _kids: Episodes())


class HostPopulationTrainer(BasePopulationTrainer):
    """Trains ``size`` members on host-stepped environments (spec ``trainer == "host"``).

    Discrete and continuous (``Box``) actions; ``Box`` observations of any shape (images
    ``[H, W, C]`` go to the CNN torso, other shapes are flattened).

    Each member gets ``num_envs`` training environments whenever it starts fresh episodes; the
    ``eval_episodes`` evaluation environments per member are created once (every evaluation
    resets them).

    Args:
        env_id: Registered host environment id, e.g. ``"lunar_lander"``.
        context: The context (planet name, ``"name=value"`` text or mapping).
        config: Structural PPO settings (a preset).
        size: Number of members.
        agent: The learner (default: PPO of ``config``).
    """

    def __init__(
        self,
        env_id: str,
        context: str | Mapping[str, float] | None,
        config: PPOConfig,
        size: int,
        agent: Agent | None = None,
    ) -> None:
        spec = envs.spec(env_id)
        if spec.trainer != "host":
            raise ConfigError(f"{env_id} steps inside JAX: train it with PopulationTrainer")
        self.context = envs.member_contexts(env_id, context, 1)[0]
        self._make_env = partial(spec.make_host, self.context)
        self._eval_envs = [self._make_env() for _ in range(size * config.eval_episodes)]
        action_space = self._eval_envs[0].action_space
        raw_shape = tuple(self._eval_envs[0].observation_space.shape)
        # Observations the networks take: images as they are, anything else flattened.
        self._obs_shape_host = raw_shape if is_image(raw_shape) else (int(np.prod(raw_shape)),)
        super().__init__(config, size, action_space, self._eval_envs[0].observation_space, agent)
        self._discrete = hasattr(action_space, "n")
        self._low: np.int32 | np.ndarray  # the action bounds: an index's, or a box's
        self._high: np.int32 | np.ndarray
        if self._discrete:
            self._low, self._high = np.int32(0), np.int32(int(action_space.n) - 1)
            self._action_shape: tuple[int, ...] = ()
        else:
            self._low = np.asarray(action_space.low, np.float32)
            self._high = np.asarray(action_space.high, np.float32)
            self._action_shape = (int(np.prod(action_space.shape)),)
        self._act = jax.jit(jax.vmap(self._act_member))
        self._eval_act = jax.jit(jax.vmap(self._eval_member))
        self._learn = jax.jit(jax.vmap(self.agent.learn))

    def _obs_shape(self, observation_space: Any) -> tuple[int, ...]:
        return self._obs_shape_host

    def _fresh(self, keys: jax.Array) -> Any:
        k_net, k_run = jax.vmap(jax.random.split, out_axes=1)(keys)
        environments, obs = self._start(k_run)
        state = jax.vmap(self.agent.init_member)(k_net, None, jnp.asarray(obs), k_run)
        return state.replace(env_state=Episodes(environments))

    def _train_iterations(self, state: Any, iterations: int) -> Any:
        owned = state.env_state if isinstance(state.env_state, Episodes) else Episodes()
        environments = owned.take()
        if environments is None:
            logger.debug("the state's episodes moved on (or were not kept): fresh ones from keys")
            environments, obs = self._start(state.key)
        else:
            obs = np.asarray(state.obs)
        for _ in range(iterations):
            state, rollout, obs = self._rollout(state, environments, obs)
            state = self._learn(state.replace(env_state=None), rollout, jnp.asarray(obs))
        return state.replace(env_state=Episodes(environments), obs=jnp.asarray(obs))

    def evaluate_members(self, state: Any, keys: jax.Array) -> np.ndarray:
        """Play ``eval_episodes`` episodes per member on the host (contract: the base class).

        All ``P x eval_episodes`` episodes run in lockstep, each until it terminates or hits
        the time limit; diverged members are not played.
        """
        n = self.config.eval_episodes
        params = self.agent.eval_params(state)
        finite = _finite_members(params, self.size)
        obs = self._reset(self._eval_envs, keys, n)
        returns = np.zeros((self.size, n))
        alive = np.repeat(finite[:, None], n, axis=1)
        while alive.any():
            action, keys = self._eval_act(params, obs, keys)
            action = self._clip(action)  # waits for the result, so obs may now change
            for p, e in zip(*np.nonzero(alive), strict=True):
                env = self._eval_envs[p * n + e]
                o, reward, term, trunc, _ = env.step(self._env_action(action[p, e]))
                obs[p, e] = np.reshape(o, self._obs_shape_host)
                returns[p, e] += reward
                alive[p, e] = not (term or trunc)
        return np.where(finite, returns.mean(axis=1), np.nan)

    # --- internals -------------------------------------------------------------------------

    def _act_member(
        self, params: Any, obs: jax.Array, key: jax.Array
    ) -> tuple[jax.Array, Any, jax.Array]:
        """One member's training step on ``obs [E, ...]``: ``(action, extras, key)``."""
        key, k_act = jax.random.split(key)
        action, extras = self.agent.act(params, obs, k_act)
        return action, extras, key

    def _eval_member(
        self, params: Any, obs: jax.Array, key: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """One member's evaluation step on ``obs [N, ...]``: ``(action, key)``."""
        key, k_act = jax.random.split(key)
        return self.agent.eval_action(params, obs, k_act), key

    def _clip(self, action: jax.Array) -> np.ndarray:
        # A diverged member's NaN logits still sample an index; clip so it cannot crash the
        # run. Continuous actions are clipped to the space's bounds (the Gaussian is not
        # squashed; PPO keeps the unclipped sample's log-probability, as in the JAX trainer).
        return np.clip(np.asarray(action), self._low, self._high)

    def _env_action(self, action: np.ndarray) -> Any:
        """One environment's action as gymnasium takes it: an int, or a float vector."""
        return int(action) if self._discrete else np.asarray(action, np.float32)

    def _start(self, keys: jax.Array) -> tuple[list[Any], np.ndarray]:
        """New training environments seeded from ``keys [P]``: ``(envs [P*E], obs [P, E, d])``."""
        environments = [self._make_env() for _ in range(self.size * self.config.num_envs)]
        return environments, self._reset(environments, keys, self.config.num_envs)

    def _reset(self, env_list: Sequence[Any], keys: jax.Array, per_member: int) -> np.ndarray:
        """Reset ``per_member`` environments of each member with seeds from ``keys [P]``."""
        seeds = np.asarray(
            jax.vmap(lambda k: jax.random.randint(k, (per_member,), 0, 2**31 - 1))(
                jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, 1)
            )
        )
        first = [env.reset(seed=int(s))[0] for env, s in zip(env_list, seeds.ravel(), strict=True)]
        shape = (self.size, per_member, *self._obs_shape_host)
        return np.stack(first).reshape(shape).astype(np.float32)

    def _rollout(
        self, state: Any, environments: Sequence[Any], obs: np.ndarray
    ) -> tuple[Any, Rollout, np.ndarray]:
        """``rollout_len`` host steps of every member from ``obs [P, E, d]``.

        Returns:
            ``(state, rollout [P, T, E], next obs [P, E, d])``.
        """
        size, steps, n_envs = self.size, self.config.rollout_len, self.config.num_envs
        obs_buf = np.empty((size, steps, *obs.shape[1:]), np.float32)
        actions = np.empty(
            (size, steps, n_envs, *self._action_shape),
            np.int32 if self._discrete else np.float32,
        )
        rewards = np.empty((size, steps, n_envs), np.float32)
        dones = np.empty((size, steps, n_envs), bool)
        extras = []
        key = state.key
        acting = self.agent.act_params(state)  # only what acting needs crosses the jit
        for t in range(steps):
            obs_buf[:, t] = obs
            action, extra, key = self._act(acting, obs_buf[:, t], key)
            extras.append(jax.device_get(extra))
            actions[:, t] = self._clip(action)
            # A new array each step, never written in place: a returned state's obs may share
            # its memory (jnp.asarray of a host array need not copy on CPU).
            obs = self._step(environments, obs, actions[:, t], rewards[:, t], dones[:, t])
        stacked = jax.tree.map(lambda *x: np.stack(x, axis=1), *extras)  # [P, T, E, ...]
        rollout = Rollout(obs_buf, actions, rewards, dones, stacked)  # type: ignore[arg-type]  # numpy: the jitted learn converts
        return state.replace(key=key), rollout, obs

    def _step(
        self,
        environments: Sequence[Any],
        obs: np.ndarray,
        action: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
    ) -> np.ndarray:
        """Step every training environment once; fill ``rewards``/``dones [P, E]``.

        Returns:
            The next observations ``[P, E, d]`` (a new array, like ``obs``).
        """
        n_envs = self.config.num_envs
        next_obs = np.empty_like(obs)
        for i, env in enumerate(environments):
            p, e = divmod(i, n_envs)
            o, reward, term, trunc, _ = env.step(self._env_action(action[p, e]))
            if term or trunc:
                o, _ = env.reset()
            next_obs[p, e] = np.reshape(o, self._obs_shape_host)
            rewards[p, e] = reward
            dones[p, e] = term or trunc
        return next_obs


def _finite_members(params: Any, size: int) -> np.ndarray:
    """``[P]`` true where every parameter of the member is finite."""
    leaves = jax.tree.leaves(params)
    return np.logical_and.reduce(
        [np.isfinite(np.asarray(x)).reshape(size, -1).all(axis=1) for x in leaves]
    )

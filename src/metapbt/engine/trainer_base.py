"""What every population trainer shares: members' state, traced hyperparameters, decisions.

A trainer runs ``size`` members of an `Agent` side by side; its
subclasses decide only where the environments step (`metapbt.engine.trainer`: inside one
jitted program; `metapbt.engine.host_trainer`: on the host). How a member acts and learns,
which hyperparameters it takes and what a clone copies are the agent's
(`PPOAgent` unless another is given).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metapbt.engine import agents
from metapbt.engine.agent import Agent
from metapbt.engine.presets import PPOConfig
from metapbt.errors import ConfigError
from metapbt.population.decisions import Clone, Decision


class BasePopulationTrainer(abc.ABC):
    """Trains ``size`` members of an agent; subclasses decide where the environments step.

    Lifecycle: ``init`` fresh members, then per interval ``train``, ``evaluate`` and ``apply``
    the population's decisions. The state is the agent's member state stacked ``[P]`` (its
    ``env_state``, ``obs`` and ``key`` fields are the trainer's); the trainer itself holds no
    state of a run (only its environments' factories and compiled programs), so it may train
    any state it returned.

    Args:
        config: The rollout's settings (``num_envs``, ``rollout_len``, ``eval_episodes``; a
            preset) and, without ``agent``, PPO's.
        size: Number of members (a batch of runs: runs x population).
        action_space: The environment's action space (gymnax or gymnasium: discrete if it has
            ``n``).
        observation_space: Its observation space.
        agent: The learner, or the name of one in `metapbt.engine.agents.AGENTS` built
            from ``config`` and the spaces (default: ``"ppo"``; ``config`` is then a preset of
            that agent's kind).
    """

    def __init__(
        self,
        config: PPOConfig,
        size: int,
        action_space: Any,
        observation_space: Any,
        agent: Agent | str | None = None,
    ) -> None:
        self.config = config
        self.size = size
        if agent is None or isinstance(agent, str):
            shape = self._obs_shape(observation_space)
            agent = agents.build(agent or "ppo", config, action_space, observation_space, shape)
        self.agent: Agent = agent

    @property
    def network(self) -> Any:
        """The agent's networks (PPO's actor-critic)."""
        return self.agent.network  # type: ignore[attr-defined]  # PPO's and DQN's: not in Agent

    def _obs_shape(self, observation_space: Any) -> tuple[int, ...]:
        """One observation's shape as the networks get it (the host trainer flattens)."""
        return tuple(observation_space.shape)

    def check_space(self, names: Sequence[str]) -> None:
        """Raise unless every tuned hyperparameter is one the agent can change."""
        self.agent.check_names(names)

    def init(self, key: jax.Array, configs: Sequence[Mapping[str, float]]) -> Any:
        """Fresh members ``[P]`` with the given hyperparameters (member keys split from ``key``)."""
        return self.init_members(jax.random.split(key, len(configs)), configs)

    def init_members(self, keys: jax.Array, configs: Sequence[Mapping[str, float]]) -> Any:
        """Fresh members ``[P]``, member ``i`` from ``keys[i]`` with ``configs[i]``.

        A batch of runs concatenates each run's member keys (split from its own seed as in
        `init`), so every run starts as it would alone.
        """
        if len(configs) != self.size or len(keys) != self.size:
            raise ConfigError(
                f"expected {self.size} configs and keys, got {len(configs)} and {len(keys)}"
            )
        self.check_space(list(configs[0]))
        missing = [n for n in self.agent.required if n not in configs[0]]
        if missing:
            raise ConfigError(
                f"every config needs {missing} (tuned or fixed) for the {self.agent.name} agent"
            )
        return self.set_hparams(self._fresh(keys), configs)

    @abc.abstractmethod
    def _fresh(self, keys: jax.Array) -> Any:
        """Fresh members ``[P]`` from member keys ``[P]`` (untuned hyperparameters at defaults)."""

    def set_hparams(self, state: Any, configs: Sequence[Mapping[str, float]]) -> Any:
        """Write each member's hyperparameters into the (traced) state (the agent's rule)."""
        return self.agent.set_hparams(state, configs)

    def apply(self, state: Any, decisions: Sequence[Decision]) -> Any:
        """Clone donors (what the agent copies), then set every member's new config.

        Each slot keeps its environments: training goes on without restarting episodes.
        """
        index = np.array([d.source if isinstance(d, Clone) else d.member for d in decisions])
        return self.set_hparams(self.agent.clone(state, index), [d.config for d in decisions])

    def split(self, state: Any, parts: int) -> list[Any]:
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

    def join(self, states: Sequence[Any]) -> Any:
        """One state of the runs ``states``, members in order (the inverse of `split`)."""
        if len(states) == 1:
            return states[0]
        return jax.tree.map(lambda *leaves: jnp.concatenate(leaves), *states)

    def train(self, state: Any, steps: int) -> Any:
        """Train every member for ``steps`` environment steps (a multiple of the batch)."""
        if steps % self.config.batch_size:
            raise ConfigError(
                f"interval {steps} must be a multiple of the batch size "
                f"{self.config.batch_size} ({self.config.num_envs} envs x "
                f"{self.config.rollout_len} steps)"
            )
        return self._train_iterations(state, steps // self.config.batch_size)

    @abc.abstractmethod
    def _train_iterations(self, state: Any, iterations: int) -> Any:
        """Run ``iterations`` rollout-and-learn iterations of every member."""

    def evaluate(self, state: Any, key: jax.Array) -> np.ndarray:
        """Mean return of ``eval_episodes`` episodes per member, ``[P]``.

        Member ``i`` evaluates with the ``i``-th key split from ``key``. A member whose
        evaluation parameters hold a NaN or infinity has diverged: its reward is NaN (even
        where the environment would still pay for its garbage actions), so the population
        replaces it and never copies it.
        """
        return self.evaluate_members(state, jax.random.split(key, self.size))

    @abc.abstractmethod
    def evaluate_members(self, state: Any, keys: jax.Array) -> np.ndarray:
        """`evaluate` with one key per member, ``keys [P]``."""

"""The agents by name: ``AGENTS.make(name, config=..., action_space=..., ...)``.

Every factory takes the agent's structural config (a preset of its own kind), the
environment's action and observation spaces, and the observation shape the network gets; the
trainers build an agent named by a string this way.
"""

from __future__ import annotations

from typing import Any

from metapbt._registry import Registry
from metapbt.engine.agent import Agent
from metapbt.engine.dqn_agent import DQNAgent
from metapbt.engine.dqn_presets import DQNConfig
from metapbt.engine.ppo_agent import PPOAgent
from metapbt.engine.presets import PPOConfig
from metapbt.errors import ConfigError

AGENTS: Registry[Agent] = Registry("agent")


def _config_of(name: str, config: Any, kind: type) -> Any:
    if not isinstance(config, kind):
        raise ConfigError(
            f"the {name} agent takes a {kind.__name__} (one of its presets), "
            f"got a {type(config).__name__}"
        )
    return config


@AGENTS.register("ppo")
def _ppo(config: Any, action_space: Any, observation_space: Any, obs_shape: Any) -> Agent:
    return PPOAgent(
        _config_of("ppo", config, PPOConfig), action_space, observation_space, obs_shape
    )


@AGENTS.register("dqn")
def _dqn(config: Any, action_space: Any, observation_space: Any, obs_shape: Any) -> Agent:
    return DQNAgent(
        _config_of("dqn", config, DQNConfig), action_space, observation_space, obs_shape
    )

"""The agents a run can train, by name: `AGENTS` (``ppo``, ``dqn``).

An `AgentKind` says everything a run's configuration needs of an agent before any
environment exists: its presets (each with a run's default budget and interval), its default
search space, the structural settings a space needs, and how to build the agent for an
environment's spaces. The trainers build an agent named by a string through it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from metapbt import envs
from metapbt._registry import Registry
from metapbt.engine import dqn_agent, dqn_presets, presets, tuning
from metapbt.engine.agent import Agent
from metapbt.engine.dqn_agent import DQNAgent
from metapbt.engine.dqn_presets import DQNConfig
from metapbt.engine.ppo_agent import PPOAgent
from metapbt.engine.presets import PPOConfig, PresetUse
from metapbt.errors import ConfigError, UnknownNameError
from metapbt.population import space as spaces
from metapbt.population.space import SearchSpace


@dataclass(frozen=True)
class AgentKind:
    """One agent as a run's configuration sees it.

    Attributes:
        name: Its name (``--agent``).
        config_type: The class of its presets' structural configs.
        presets: Its presets by name.
        use_of: What a preset is for (`PresetUse`), by name.
        tunable: What it can tune during training, by name, with what each is.
        default_space: The space tuned when a run names none.
        for_space: ``(config, space) -> config`` with the structural bounds ``space`` needs.
        build: ``(config, action_space, observation_space, obs_shape) -> Agent``.
        discrete_only: It takes discrete actions only.
    """

    name: str
    config_type: type
    presets: Registry[Any]
    use_of: Callable[[str], PresetUse]
    tunable: Mapping[str, str]
    default_space: Callable[[], SearchSpace]
    for_space: Callable[[Any, SearchSpace], Any]
    build: Callable[[Any, Any, Any, Any], Agent]
    discrete_only: bool = False

    def preset(self, name: str, env: str | None = None) -> Any:
        """The structural config of preset ``name`` (for ``env`` where the preset asks).

        Raises:
            UnknownNameError: If the agent has no such preset (the message names its presets).
        """
        self._check(name)
        return self.presets.make(name, env=env)

    def use(self, name: str) -> PresetUse:
        """What preset ``name`` is for (a run's default budget and interval, its families)."""
        self._check(name)
        return self.use_of(name)

    def preset_names(self) -> list[str]:
        """Its presets' names."""
        return list(self.presets.names())

    def _check(self, name: str) -> None:
        if name not in self.presets:
            raise UnknownNameError(
                f"unknown preset {name!r} for the {self.name} agent; known: "
                f"{', '.join(self.presets.names())}"
            )


AGENTS: Registry[AgentKind] = Registry("agent")


def kind(name: str) -> AgentKind:
    """The agent kind ``name``.

    Raises:
        UnknownNameError: On an unknown agent (the message lists the known ones).
    """
    return AGENTS.make(name)


def _typed(name: str, config: Any, config_type: type) -> Any:
    if not isinstance(config, config_type):
        raise ConfigError(
            f"the {name} agent takes a {config_type.__name__} (one of its presets), "
            f"got a {type(config).__name__}"
        )
    return config


def _build_ppo(config: Any, action_space: Any, observation_space: Any, obs_shape: Any) -> Agent:
    config = _typed("ppo", config, PPOConfig)
    return PPOAgent(config, action_space, observation_space, obs_shape)


def _build_dqn(config: Any, action_space: Any, observation_space: Any, obs_shape: Any) -> Agent:
    config = _typed("dqn", config, DQNConfig)
    return DQNAgent(config, action_space, observation_space, obs_shape)


PPO = AgentKind(
    "ppo",
    PPOConfig,
    presets.PRESETS,
    presets.use,
    tuning.TUNABLE,
    spaces.default_space,
    tuning.for_space,
    _build_ppo,
)
DQN = AgentKind(
    "dqn",
    DQNConfig,
    dqn_presets.DQN_PRESETS,
    dqn_presets.USES.__getitem__,
    dqn_agent.TUNABLE,
    dqn_agent.default_space,
    dqn_agent.for_space,
    _build_dqn,
    discrete_only=True,
)
AGENTS.register("ppo")(lambda: PPO)
AGENTS.register("dqn")(lambda: DQN)


def for_env(env_id: str) -> list[str]:
    """The agents that can train ``env_id`` (DQN: discrete actions only).

    Builds the environment once under its default context to read its action space.
    """
    spec = envs.spec(env_id)
    context = envs.resolve_context(env_id, "earth")
    if spec.trainer == "jax":
        env, params = spec.make(context)
        discrete = hasattr(env.action_space(params), "n")
    else:
        discrete = hasattr(spec.make_host(context).action_space, "n")
    usable = [name for name in AGENTS.names() if discrete or not kind(name).discrete_only]
    return sorted(usable, key=lambda name: name != "ppo")  # the default first


def check_env(name: str, env_id: str) -> None:
    """Raise unless agent ``name`` can train ``env_id`` (before any file is written).

    Raises:
        ConfigError: Naming the agent, the env and the agents that can train it.
    """
    if not kind(name).discrete_only:
        return
    usable = for_env(env_id)  # builds the env once
    if name not in usable:
        raise ConfigError(
            f"the {name} agent takes discrete actions only, and {env_id} has continuous ones; "
            f"agents for {env_id}: {', '.join(usable)}"
        )


def build(
    name: str, config: Any, action_space: Any, observation_space: Any, obs_shape: Any
) -> Agent:
    """The agent ``name`` for an environment's spaces (the trainers' door)."""
    return kind(name).build(config, action_space, observation_space, obs_shape)

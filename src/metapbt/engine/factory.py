"""The trainer that fits an environment: the env registry's ``spec.trainer`` names it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from metapbt import envs
from metapbt._registry import Registry
from metapbt.engine.agent import Agent
from metapbt.engine.dqn_presets import DQNConfig
from metapbt.engine.host_trainer import HostPopulationTrainer
from metapbt.engine.presets import PPOConfig
from metapbt.engine.trainer import PopulationTrainer
from metapbt.engine.trainer_base import BasePopulationTrainer

TRAINERS: Registry[BasePopulationTrainer] = Registry("trainer")
TRAINERS.register("jax")(PopulationTrainer)
TRAINERS.register("host")(HostPopulationTrainer)


def make_trainer(
    env_id: str,
    context: str | Mapping[str, float] | Sequence[Mapping[str, float]] | None,
    config: PPOConfig | DQNConfig,
    size: int,
    agent: Agent | str | None = None,
) -> BasePopulationTrainer:
    """The trainer of ``env_id``: in-JAX for gymnax envs, host-stepped for Box2D ones.

    Args:
        env_id: Registered environment id.
        context: The context (planet name, ``"name=value"`` text or mapping) of every member,
            or a list of one per member (in-JAX trainers of envs whose contexts mix).
        config: The agent's structural settings (a preset of its kind).
        size: Number of members.
        agent: The learner, or its name (`metapbt.engine.agents.AGENTS`; default PPO).
    """
    return TRAINERS.make(
        envs.spec(env_id).trainer,
        env_id=env_id,
        context=context,
        config=config,
        size=size,
        agent=agent,
    )

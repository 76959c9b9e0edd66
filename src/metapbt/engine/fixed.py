"""Score fixed configurations: train each (configuration, seed) pair without any exploration.

Used by the portfolio's random search and its cross-task evaluation. Every pair is one member of
a population trained as a single vmapped program, so 30 configurations x 4 seeds cost one
compilation and run in parallel. A "seed" here is an independent member (its own network
initialisation, environment and sampling keys), the in-program equivalent of the reference's
separate seeded runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import jax
import numpy as np

from metapbt.engine import agents
from metapbt.engine.factory import make_trainer
from metapbt.engine.trainer_base import BasePopulationTrainer
from metapbt.errors import ConfigError

logger = logging.getLogger(__name__)


def score_configs(
    env: str,
    context: str | Mapping[str, float] | None,
    configs: Sequence[Mapping[str, float]],
    seeds: int,
    steps: int,
    preset: str = "classic",
    seed: int = 0,
    chunk: int = 64,
    on_chunk: Callable[[int, int], None] | None = None,
    agent: str = "ppo",
) -> np.ndarray:
    """Train every configuration on ``seeds`` seeds for ``steps`` steps; final evaluation returns.

    Args:
        env: Environment id.
        context: Its context.
        configs: Hyperparameter configurations (held fixed during training).
        seeds: Independent members per configuration.
        steps: Environment steps per member (a multiple of the preset's batch size).
        preset: The agent's preset name.
        seed: Root seed.
        chunk: Most members trained in one program (bounds memory; the last chunk may be
            smaller and then compiles once more).
        on_chunk: Called with (members done, members total) after each chunk.
        agent: The learner (`metapbt.engine.agents.AGENTS`).

    Returns:
        Array ``[len(configs), seeds]`` of mean evaluation returns (NaN: the member diverged).
    """
    if seeds < 1 or chunk < 1 or not configs:
        raise ConfigError("need at least one configuration, one seed and chunk >= 1")
    config = agents.kind(agent).preset(preset, env=env)
    if steps < config.batch_size or steps % config.batch_size:
        raise ConfigError(
            f"steps ({steps}) must be a positive multiple of the {preset!r} preset's batch "
            f"size {config.batch_size}"
        )
    members = [dict(c) for c in configs for _ in range(seeds)]
    rewards = np.empty(len(members))
    key = jax.random.PRNGKey(seed)
    trainers: dict[int, BasePopulationTrainer] = {}
    for start in range(0, len(members), chunk):
        part = members[start : start + chunk]
        if len(part) not in trainers:
            trainers[len(part)] = make_trainer(env, context, config, len(part), agent=agent)
        trainer = trainers[len(part)]
        key, k_init, k_eval = jax.random.split(key, 3)
        state = trainer.train(trainer.init(k_init, part), steps)
        rewards[start : start + len(part)] = trainer.evaluate(state, k_eval)
        logger.debug("scored members %d-%d of %d", start, start + len(part), len(members))
        if on_chunk is not None:
            on_chunk(start + len(part), len(members))
    return rewards.reshape(len(configs), seeds)

"""One population run end to end: the driver loop over a :class:`Population` and a trainer.

Each round trains every member for an interval, evaluates them, tells the population the
rewards and applies its decisions; then the history and the checkpoint are written
(:mod:`metapbt.engine.outputs`), so a killed run resumes from its last finished round.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jax
import numpy as np

from metapbt import envs
from metapbt.engine import presets
from metapbt.engine.checkpoint import Checkpoint
from metapbt.engine.config import RunConfig
from metapbt.engine.factory import make_trainer
from metapbt.engine.outputs import CHECKPOINT, RunOutputs, summary
from metapbt.engine.resolve import bundled_metadata, make_population
from metapbt.engine.trainer_base import BasePopulationTrainer
from metapbt.errors import ConfigError
from metapbt.population.meta_io import save_run
from metapbt.population.population import Population
from metapbt.population.space import Config

__all__ = ["CHECKPOINT", "RoundReport", "RunConfig", "bundled_metadata", "run"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundReport:
    """What one finished round reports (for progress displays)."""

    round: int
    rounds: int
    step: int
    rewards: list[float]
    configs: list[Config]
    seconds: float


def run(
    config: RunConfig,
    out: Path,
    resume: bool = False,
    on_round: Callable[[RoundReport], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) a population and return its summary (``metapbt.summary/1``).

    Raises:
        ConfigError: If ``out`` holds another run, or ``resume`` finds a different config.
    """
    outputs = RunOutputs(Path(out))
    ppo = presets.make(config.preset)
    context = envs.resolve_context(config.env, config.context)
    pop = make_population(config)
    trainer = make_trainer(config.env, context, ppo, config.population)
    ckpt = _start(config, outputs, trainer, pop, resume)
    for r in range(len(ckpt.records) + 1, config.rounds + 1):
        start = time.perf_counter()
        step = r * config.interval
        state = trainer.train(ckpt.state, config.interval)
        key, k_eval = jax.random.split(ckpt.key)
        rewards = trainer.evaluate(state, k_eval)
        configs = pop.ask()
        decisions = pop.tell(step, [float(x) for x in rewards])
        if r < config.rounds:
            state = trainer.apply(state, decisions)
        elapsed = ckpt.elapsed + time.perf_counter() - start
        record = {"step": step, "best": _best(rewards)}
        ckpt = replace(
            ckpt,
            state=state,
            key=key,
            population=pop.state_dict(),
            records=(*ckpt.records, record),
            elapsed=elapsed,
        )
        outputs.write_round(pop.history, ckpt)
        if on_round is not None:
            seconds = time.perf_counter() - start
            on_round(RoundReport(r, config.rounds, step, rewards.tolist(), configs, seconds))
    result = summary(config, context, ppo, ckpt, pop.method.explorer.state_dict())
    if config.save_meta is not None:
        _save_meta(config, context, pop)
    title = f"{config.method} on {config.env} ({config.context}), seed {config.seed}"
    outputs.write_final(result, pop.history, title)
    return result


def _start(
    config: RunConfig,
    outputs: RunOutputs,
    trainer: BasePopulationTrainer,
    pop: Population,
    resume: bool,
) -> Checkpoint:
    """A fresh run's first checkpoint, or the saved one (its population restored into ``pop``)."""
    key, k_init = jax.random.split(jax.random.PRNGKey(config.seed))
    state = trainer.init(k_init, pop.ask())
    fresh = Checkpoint(config=config.model_dump(), state=state, key=key, population={})
    if not outputs.checkpoint.exists():
        outputs.root.mkdir(parents=True, exist_ok=True)
        return fresh
    if not resume:
        raise ConfigError(
            f"{outputs.root} already holds a run; pass --resume or choose another --out"
        )
    saved = Checkpoint.load(outputs.checkpoint, template=fresh.state)
    saved.check_config(fresh.config, outputs.root)
    pop.load_state_dict(saved.population)
    logger.info("resumed %s at step %s", outputs.root, pop.last_step)
    return saved


def _best(rewards: np.ndarray) -> float:
    """The best finite reward of a round (NaN when every member diverged)."""
    return float(np.nanmax(rewards)) if np.isfinite(rewards).any() else float("nan")


def _save_meta(config: RunConfig, context: Mapping[str, float], pop: Population) -> None:
    path = save_run(
        config.save_meta,
        pop.history,
        task=config.task,
        seed=config.seed,
        method=config.method,
        env=config.env,
        context=dict(context),
        protocol=config.protocol,
    )
    logger.info("saved the run as meta-data: %s", path)

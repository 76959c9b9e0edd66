"""One population run end to end: train, evaluate, tell, apply; outputs; checkpoint; resume.

Outputs in the run directory:

* ``history.parquet``: one row per member per round (``metapbt.history/1``, see README);
* ``summary.json``: method, env, context, seed, preset, best score per round, wall time,
  versions (``metapbt.summary/1``);
* ``run.png``: best reward over time and each hyperparameter's schedule per member;
* ``checkpoint.msgpack``: the whole state after the last finished round (for ``--resume``).

Every file is written atomically (temporary file, then rename), so a run killed at any moment
leaves the last finished round intact.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from metapbt import __version__, envs
from metapbt._atomic import write_atomic, write_text_atomic
from metapbt.engine import presets
from metapbt.engine.trainer import make_trainer
from metapbt.errors import ConfigError, MetaPBTError
from metapbt.metadata.store import task_id
from metapbt.population import methods
from metapbt.population.explorers.meta import MetaSource
from metapbt.population.initializers import Initializer
from metapbt.population.meta_io import save_run
from metapbt.population.population import Population
from metapbt.population.portfolio import Portfolio
from metapbt.population.space import Config, SearchSpace, default_space

logger = logging.getLogger(__name__)
SUMMARY_SCHEMA = "metapbt.summary/1"
CHECKPOINT = "checkpoint.msgpack"


@dataclass(frozen=True)
class RunConfig:
    """A run's settings (the reference protocol's values by default, ``fast`` PPO).

    Args:
        env: Environment id.
        context: Planet name or ``"name=value,..."``.
        method: Method name.
        preset: PPO preset name.
        population: Number of members.
        budget: Environment steps per member.
        interval: Steps per member between sync points.
        seed: Seed of everything (population, networks, environments).
        quantile: Truncation-selection quantile.
        metadata: Meta-data directory for the meta methods (``None``: the bundled set).
        save_meta: Append the finished run to this meta-data directory.
        portfolio: Portfolio file (``metapbt portfolio select``) to warm-start from: member
            ``i`` starts from entry ``i``, members beyond the portfolio from random draws.
    """

    env: str = "cart_pole"
    context: str = "earth"
    method: str = "pb2-star"
    preset: str = "fast"
    population: int = 4
    budget: int = 600_000
    interval: int = 40_000
    seed: int = 0
    quantile: float = 0.25
    metadata: str | None = None
    save_meta: str | None = None
    portfolio: str | None = None

    @property
    def task(self) -> str:
        """The task id, ``"<env> <context>"`` (how meta-data names tasks)."""
        return task_id(self.env, self.context)

    def __post_init__(self) -> None:
        if self.interval < 1 or self.budget < self.interval or self.budget % self.interval:
            raise ConfigError(
                f"budget ({self.budget}) must be a positive multiple of interval ({self.interval})"
            )
        if self.population < 1:
            raise ConfigError(f"population must be at least 1, got {self.population}")


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
    """Run (or resume) a population and return its summary.

    Raises:
        ConfigError: If ``out`` holds another run, or ``resume`` finds a different config.
    """
    out = Path(out)
    ppo = presets.make(config.preset)
    if config.interval % ppo.batch_size:
        raise ConfigError(
            f"interval {config.interval} must be a multiple of the {config.preset!r} preset's "
            f"batch size {ppo.batch_size}"
        )
    context = envs.resolve_context(config.env, config.context)
    space = default_space()
    pop = Population(
        space,
        config.population,
        _method(config),
        config.seed,
        initializer=_initializer(config, space),
    )
    trainer = make_trainer(config.env, context, ppo, config.population)
    key, k_init = jax.random.split(jax.random.PRNGKey(config.seed))
    state = trainer.init(k_init, pop.ask())
    records: list[dict[str, float]] = []
    elapsed = 0.0
    ckpt = out / CHECKPOINT
    if ckpt.exists() and not resume:
        raise ConfigError(f"{out} already holds a run; pass --resume or choose another --out")
    if resume and ckpt.exists():
        state, key, records, elapsed = _load(ckpt, config, state, pop)
        logger.info("resumed %s at step %s", out, pop.last_step)
    out.mkdir(parents=True, exist_ok=True)
    rounds = config.budget // config.interval
    for r in range(len(records) + 1, rounds + 1):
        start = time.perf_counter()
        step = r * config.interval
        state = trainer.train(state, config.interval)
        key, k_eval = jax.random.split(key)
        rewards = trainer.evaluate(state, k_eval)
        configs = pop.ask()
        decisions = pop.tell(step, [float(x) for x in rewards])
        if r < rounds:
            state = trainer.apply(state, decisions)
        elapsed += time.perf_counter() - start
        best = float(np.nanmax(rewards)) if np.isfinite(rewards).any() else float("nan")
        records.append({"step": step, "best": best})
        pop.history.to_parquet(out / "history.parquet")
        _save(ckpt, config, state, key, pop, records, elapsed)
        if on_round is not None:
            on_round(
                RoundReport(r, rounds, step, rewards.tolist(), configs, time.perf_counter() - start)
            )
    summary = _summary(config, context, ppo, records, elapsed, pop)
    if config.save_meta is not None:
        path = save_run(
            config.save_meta,
            pop.history,
            task=config.task,
            seed=config.seed,
            method=config.method,
            env=config.env,
            context=dict(context),
        )
        logger.info("saved the run as meta-data: %s", path)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2))
    from metapbt.analysis.run_figure import plot_run

    plot_run(
        pop.history.to_frame(),
        space.names,
        out / "run.png",
        f"{config.method} on {config.env} ({config.context}), seed {config.seed}",
    )
    return summary


def _method(config: RunConfig) -> methods.Method:
    meta = None
    if config.method in methods.META_METHODS:
        root = Path(config.metadata) if config.metadata else bundled_metadata(config.env)
        meta = MetaSource(root, config.task)
    elif config.metadata is not None:
        raise ConfigError(f"method {config.method!r} does not use meta-data; drop --metadata")
    return methods.make(config.method, config.quantile, metadata=meta)


def _initializer(config: RunConfig, space: SearchSpace) -> Initializer | None:
    if config.portfolio is None:
        return None
    portfolio = Portfolio.load(config.portfolio)
    portfolio.check_space(space)
    if config.task in portfolio.matrix.tasks:
        logger.warning(
            "the portfolio %s was selected with %r among its tasks: the warm start has seen "
            "the target (select with --exclude %r)",
            config.portfolio,
            config.task,
            config.task,
        )
    if len(portfolio.entries) < config.population:
        logger.info(
            "portfolio has %d entries for %d members: the rest start from random draws",
            len(portfolio.entries),
            config.population,
        )
    return portfolio.initializer()


def bundled_metadata(env: str) -> Path:
    """The meta-data shipped for ``env``: PB2 runs on its five planets (``metadata build``)."""
    from importlib.resources import files

    root = Path(str(files("metapbt") / "data" / "meta" / env))
    if not root.is_dir():
        raise ConfigError(f"no bundled meta-data for {env!r}; pass --metadata DIR")
    return root


def _summary(config, context, ppo, records, elapsed, pop) -> dict[str, Any]:
    return {
        "schema": SUMMARY_SCHEMA,
        **dataclasses.asdict(config),
        "context_values": dict(context),
        "preset_values": dataclasses.asdict(ppo),
        "best_per_round": records,
        "final_best": records[-1]["best"],
        "wall_seconds": elapsed,
        "explorer": pop.method.explorer.state_dict(),
        "versions": {
            "metapbt": __version__,
            "jax": jax.__version__,
            "python": platform.python_version(),
        },
    }


def _save(path, config, state, key, pop, records, elapsed) -> None:
    leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(state)]
    meta = {
        "config": dataclasses.asdict(config),
        "population": pop.state_dict(),
        "records": records,
        "elapsed": elapsed,
        "key": np.asarray(key).tolist(),
    }
    payload = {"leaves": dict(enumerate(leaves)), "meta": json.dumps(meta)}
    data = serialization.msgpack_serialize(payload)
    write_atomic(path, lambda tmp: tmp.write_bytes(data))


def _load(path, config, template, pop):
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
        meta = json.loads(payload["meta"])
    except Exception as err:  # msgpack raises several unrelated types on corrupt input
        raise MetaPBTError(
            f"checkpoint {path} is unreadable ({err}); delete it to restart"
        ) from err
    if meta["config"] != dataclasses.asdict(config):
        raise ConfigError(
            f"{path.parent} was started with {meta['config']}, not {dataclasses.asdict(config)};"
            " resume with the same settings"
        )
    treedef = jax.tree.structure(template)
    leaves = [
        payload["leaves"][str(i)] if str(i) in payload["leaves"] else payload["leaves"][i]
        for i in range(treedef.num_leaves)
    ]
    state = jax.tree.unflatten(treedef, [jax.numpy.asarray(x) for x in leaves])
    pop.load_state_dict(meta["population"])
    key = jax.numpy.asarray(np.asarray(meta["key"], np.uint32))
    return state, key, meta["records"], meta["elapsed"]

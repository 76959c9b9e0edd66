"""A run's settings resolved once into everything its run needs.

[`resolve`][metapbt.runs.resolve.resolve] turns a [`RunConfig`][metapbt.runs.config.RunConfig]
into a [`ResolvedRun`][metapbt.runs.resolve.ResolvedRun].

The CLI, a study cell, calibrate and the Ray adapter hand their settings to
[`resolve`][metapbt.runs.resolve.resolve] (the adapter, which has a task id rather than a run
configuration, to the two pieces it is made of: [`task_ref`][metapbt.runs.resolve.task_ref] and
[`meta_source`][metapbt.runs.resolve.meta_source]); everything downstream (the batch, the trainer,
the run's files) takes the [`ResolvedRun`][metapbt.runs.resolve.ResolvedRun] and never resolves a
context, a method or a store again. [`meta_source`][metapbt.runs.resolve.meta_source] is the one
place that decides which meta-data a method gets.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from metapbt import envs
from metapbt.engine import agents
from metapbt.engine.dqn_presets import DQNConfig
from metapbt.engine.presets import PPOConfig
from metapbt.envs.contexts import parse_assignments, split_task_id
from metapbt.errors import ConfigError
from metapbt.metadata.source import MetaSource, TaskRef
from metapbt.population import methods
from metapbt.population.initializers import Initializer, within
from metapbt.population.population import Population
from metapbt.population.portfolio import Portfolio
from metapbt.population.space import SearchSpace
from metapbt.runs.config import POOLED, RunConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolvedRun:
    """A run configuration with everything it names looked up, checked and built once.

    Attributes:
        config: The run's settings, as given.
        spec: The environment's spec (its family: trainer kind, features).
        target: The run's task (env, context values, task id).
        agent_config: The agent's preset's structural settings for this env and space
            (PPO's through `metapbt.engine.tuning.for_space`).
        space: The tuned hyperparameters (the config's ``space``; by default the paper's).
        meta: The meta methods' meta-data (``None`` for the others).
        initializer: The run's start (portfolio entries, ``init_ranges`` draws, or ``None``:
            random draws from the whole space).
    """

    config: RunConfig
    spec: envs.EnvFamily
    target: TaskRef
    agent_config: PPOConfig | DQNConfig
    space: SearchSpace
    meta: MetaSource | None
    initializer: Initializer | None

    @property
    def context(self) -> Mapping[str, float]:
        """Every context feature's value (read-only; the configuration's, resolved once)."""
        return self.config.context_values

    def method(self) -> methods.Method:
        """A fresh instance of the run's method (its explorer holds the run's state)."""
        return methods.make(self.config.method, self.config.quantile, metadata=self.meta)

    def population(self) -> Population:
        """The run's fresh population, seeded from ``config.random_seed``.

        A [`Population`][metapbt.population.population.Population].
        """
        return Population(
            self.space,
            self.config.population,
            self.method(),
            self.config.random_seed,
            initializer=self.initializer,
        )


def resolve(config: RunConfig) -> ResolvedRun:
    """The run ``config`` names, resolved once (context, task, preset, meta-data, start).

    Raises:
        ConfigError: If a method that uses no meta-data is given some, a meta method finds
            none (or, with ``strict``, none recorded under its protocol), or a portfolio was
            selected over another search space.
    """
    spec = envs.spec(config.env)
    target = TaskRef(config.env, config.context_values, config.task)
    root: Path | tuple[Path, ...] | None
    if not methods.uses_metadata(config.method):
        root = None if config.metadata is None else Path(config.metadata)  # meta_source refuses
    elif config.metadata == POOLED:
        root = pooled_metadata()
    elif config.metadata:
        root = Path(config.metadata)
    else:
        root = bundled_metadata(config.env, config.context, values=config.context_values)
    meta = meta_source(config.method, root, target, protocol=config.protocol, strict=config.strict)
    space = config.search_space
    if meta is not None:  # a missing, broken or mismatched store is named before any training
        meta.load(space.to_dict())  # (read once: the source caches what the explorer reads)
    kind = agents.kind(config.agent)
    agents.check_env(config.agent, config.env)
    return ResolvedRun(
        config=config,
        spec=spec,
        target=target,
        agent_config=kind.for_space(kind.preset(config.preset, env=config.env), space),
        space=space,
        meta=meta,
        initializer=_initializer(config, space, target),
    )


def batch_key(config: RunConfig, mix_contexts: bool = False) -> tuple[Any, ...]:
    """Runs with equal keys can train together in one batch.

    Environment, context, agent, preset, protocol (population, budget, interval) and search space
    (its parameters are the program's traced values): methods and
    seeds may differ. With ``mix_contexts``, the contexts of an environment whose contexts are
    environment parameters (classic control) may differ too: the trainer then passes them per
    member (see `metapbt.engine.trainer`); otherwise a trainer's programs hold one context
    as constants. Reads only the configuration (no meta-data or portfolio is opened), so a
    study's planning never fails on a cell whose own files are broken.
    """
    if mix_contexts and envs.spec(config.env).mixes_contexts:
        context: tuple[Any, ...] = ("mixed",)
    else:
        context = tuple(sorted(config.context_values.items()))
    return (
        config.env,
        context,
        config.agent,
        config.preset,
        config.population,
        config.budget,
        config.interval,
        json.dumps(config.space, sort_keys=True),
    )


def meta_source(
    method: str,
    root: Path | tuple[Path, ...] | None,
    target: TaskRef | None,
    protocol: Mapping[str, Any] | None = None,
    strict: bool = False,
) -> MetaSource | None:
    """The meta-data ``method`` learns from: the store(s) at ``root``, ``target`` left out.

    ``None`` for a method that uses none (and was given none).

    Raises:
        ConfigError: If a method that uses no meta-data is given some, or a meta method none
            (one message each, from [`check_metadata`][metapbt.population.methods.check_metadata]),
            or meta-data without a target task.
    """
    methods.check_metadata(method, given=root is not None)
    if root is None:
        return None
    if target is None:
        raise ConfigError("meta-data needs the run's target task (its runs are left out)")
    return MetaSource(root, target, protocol=protocol, strict=strict)


def task_ref(task: str) -> TaskRef:
    """The task the id ``task`` names: one of our envs (its context checked) or any id.

    An id whose env is not registered (a Ray Tune user's own task) identifies its task by
    the id alone.
    """
    env, context = split_task_id(task)
    if env not in envs.ENVS:
        return TaskRef(env, {}, task)
    return TaskRef(env, context_values(env, context), task)


def context_values(env: str, context: str | None) -> dict[str, float]:
    """The full context of a task named in a file (a meta-data task id, a portfolio's task).

    The one place below the configuration that resolves a context: a run's own context is
    resolved once, by [`RunConfig`][metapbt.runs.config.RunConfig]; the tasks other files name are
    resolved here.

    Raises:
        ConfigError: If ``env`` is unknown or the context invalid for it.
    """
    return dict(envs.resolve_context(env, context))


def _initializer(config: RunConfig, space: SearchSpace, target: TaskRef) -> Initializer | None:
    """The run's start: a portfolio's entries, draws from ``init_ranges``, or both.

    With both, the portfolio's entries come first and ``init_ranges`` draws the members beyond
    them; with neither, ``None`` (random draws from the whole space).
    """
    fill = within(config.init_ranges) if config.init_ranges else None
    if config.portfolio is None:
        return fill
    portfolio = Portfolio.load(config.portfolio)
    scored_by = (portfolio.provenance or {}).get("agent", "ppo")  # before agents: PPO's
    if scored_by != config.agent:
        raise ConfigError(
            f"the portfolio {config.portfolio} was scored with the {scored_by} agent, this run "
            f"trains {config.agent}: select one from {config.agent} runs "
            f"(`metapbt portfolio candidates --agent {config.agent}`)"
        )
    portfolio.check_space(space)
    seen = [t for t in portfolio.matrix.tasks if _is_target(t, target)]
    if seen:
        logger.warning(
            "the portfolio %s was selected with %r among its tasks, the run's task %r: the "
            "warm start has seen the target (select with --exclude %r)",
            config.portfolio,
            seen[0],
            config.task,
            seen[0],
        )
    built = (portfolio.provenance or {}).get("preset")
    if built is not None and built != config.preset:
        logger.warning(
            "the portfolio %s was scored with the %r preset, this run trains with %r",
            config.portfolio,
            built,
            config.preset,
        )
    if len(portfolio.entries) < config.population:
        logger.info(
            "portfolio has %d entries for %d members: the rest start from random draws",
            len(portfolio.entries),
            config.population,
        )
    return portfolio.initializer(fill)


def _is_target(task: str, target: TaskRef) -> bool:
    """Whether the task id ``task`` names ``target``'s physical task (or its exact id)."""
    env, context = split_task_id(task)
    try:
        values = context_values(env, context)
    except ConfigError:  # not a task of a registered env: only the id can match
        return task == target.name
    return target.same_as(env, values, task)


def _bundled_root() -> Path:
    return Path(str(files("metapbt") / "data" / "meta"))


def pooled_metadata(root: Path | None = None) -> tuple[Path, ...]:
    """Every bundled planets store (``data/meta/<env>``, not the ``<env>@<feature>`` grids).

    ``root`` replaces the package's ``data/meta`` (tests).

    Raises:
        ConfigError: If nothing ships.
    """
    root = _bundled_root() if root is None else root
    stores = tuple(p for p in sorted(root.iterdir()) if p.is_dir() and "@" not in p.name)
    if not stores:
        raise ConfigError(f"no bundled meta-data to pool under {root}")
    return stores


def bundled_metadata(
    env: str,
    context: str | None = None,
    root: Path | None = None,
    values: Mapping[str, float] | None = None,
) -> Path:
    """The meta-data shipped for ``env`` (and the run's ``context``, as text).

    Stores are ``data/meta/<env>`` (PB2 runs on the five planets) and
    ``data/meta/<env>@<feature>`` (PB2 runs on a grid of one feature, e.g.
    ``cart_pole@length``, ``lunar_lander@leg_height``). A context that names, or moves away
    from its default, exactly one feature with a store of its own gets that store
    (``length=0.5`` is CartPole's default pole, and still a pole-length task); otherwise the
    planets' store; an environment that ships only one feature's store gets it. ``root``
    replaces the package's ``data/meta`` (tests); ``values`` are the context's resolved values
    when the caller has them (else resolved here).

    Raises:
        ConfigError: If nothing ships for ``env``.
    """
    root = _bundled_root() if root is None else root
    grids = {p.name.partition("@")[2]: p for p in sorted(root.glob(f"{env}@*")) if p.is_dir()}
    if context is not None:
        named = set(parse_assignments(context)) if "=" in context else set()
        if values is None:
            values = context_values(env, context)
        features = envs.spec(env).features
        moved = {k for k, f in features.items() if not math.isclose(values[k], f.default)}
        chosen = [k for k in sorted(named | moved) if k in grids]
        if len(chosen) == 1 and len(named | moved) == 1:
            return grids[chosen[0]]
    if (root / env).is_dir():
        return root / env
    if len(grids) == 1:
        return next(iter(grids.values()))
    shipped = ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir()))
    raise ConfigError(f"no bundled meta-data for {env!r} (shipped: {shipped}); pass --metadata DIR")

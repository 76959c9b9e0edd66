"""A :class:`RunConfig` resolved into the population layer: method, meta-data, warm start.

:func:`method_for` is the one place that decides which meta-data a method gets.
"""

from __future__ import annotations

import logging
import math
from importlib.resources import files
from pathlib import Path

from metapbt import envs
from metapbt.engine.config import POOLED, RunConfig
from metapbt.envs.contexts import parse_assignments, split_task_id
from metapbt.errors import ConfigError
from metapbt.metadata.source import MetaSource, TaskRef
from metapbt.population import methods
from metapbt.population.initializers import Initializer, within
from metapbt.population.population import Population
from metapbt.population.portfolio import Portfolio
from metapbt.population.space import SearchSpace, default_space

logger = logging.getLogger(__name__)


def make_population(config: RunConfig) -> Population:
    """The run's :class:`Population` over the default search space."""
    space = default_space()
    return Population(
        space,
        config.population,
        method_for(config),
        config.random_seed,
        initializer=initializer_for(config, space),
    )


def method_for(config: RunConfig) -> methods.Method:
    """The configured method; a meta method gets its meta-data (``--metadata`` or bundled).

    Raises:
        ConfigError: If a method that uses no meta-data is given some.
    """
    meta = None
    if methods.uses_metadata(config.method):
        target = target_of(config)
        if config.metadata == POOLED:
            root: Path | tuple[Path, ...] = pooled_metadata()
        elif config.metadata:
            root = Path(config.metadata)
        else:
            root = bundled_metadata(config.env, config.context)
        meta = MetaSource(root, target, protocol=config.protocol, strict=config.strict)
    elif config.metadata is not None:
        raise ConfigError(f"method {config.method!r} does not use meta-data; drop --metadata")
    return methods.make(config.method, config.quantile, metadata=meta)


def initializer_for(config: RunConfig, space: SearchSpace) -> Initializer | None:
    """The run's start: a portfolio's entries, draws from ``init_ranges``, or both.

    With both, the portfolio's entries come first and ``init_ranges`` draws the members beyond
    them; with neither, ``None`` (random draws from the whole space).
    """
    fill = within(config.init_ranges) if config.init_ranges else None
    if config.portfolio is None:
        return fill
    portfolio = Portfolio.load(config.portfolio)
    portfolio.check_space(space)
    target = target_of(config)
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


def target_of(config: RunConfig) -> TaskRef:
    """The run's task: its env and resolved context values."""
    context = dict(envs.resolve_context(config.env, config.context))
    return TaskRef(config.env, context, config.task)


def _is_target(task: str, target: TaskRef) -> bool:
    """Whether the task id ``task`` names ``target``'s physical task (or its exact id)."""
    env, context = split_task_id(task)
    try:
        values = dict(envs.resolve_context(env, context))
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


def bundled_metadata(env: str, context: str | None = None, root: Path | None = None) -> Path:
    """The meta-data shipped for ``env`` (and the run's ``context``, as text).

    Stores are ``data/meta/<env>`` (PB2 runs on the five planets) and
    ``data/meta/<env>@<feature>`` (PB2 runs on a grid of one feature, e.g.
    ``cart_pole@length``, ``lunar_lander@leg_height``). A context that names, or moves away
    from its default, exactly one feature with a store of its own gets that store
    (``length=0.5`` is CartPole's default pole, and still a pole-length task); otherwise the
    planets' store; an environment that ships only one feature's store gets it. ``root``
    replaces the package's ``data/meta`` (tests).

    Raises:
        ConfigError: If nothing ships for ``env``.
    """
    root = _bundled_root() if root is None else root
    grids = {p.name.partition("@")[2]: p for p in sorted(root.glob(f"{env}@*")) if p.is_dir()}
    if context is not None:
        named = set(parse_assignments(context)) if "=" in context else set()
        values = envs.resolve_context(env, context)
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

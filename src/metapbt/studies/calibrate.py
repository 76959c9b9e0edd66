"""Protocol calibration: does a preset make a task learnable, and sensitive to its hyperparameters?

A comparison of hyperparameter-tuning methods says something only where (a) good
hyperparameters learn the task within the budget and (b) the outcome depends on them. Both are
measured the same way: ``configs`` random configurations of the search space, each trained with
its hyperparameters fixed for the whole budget, scored by the final evaluation return. (a) is the
best of them against the task's usual solved level; (b) is their spread.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from metapbt import envs
from metapbt._atomic import write_text_atomic
from metapbt._slug import found_or_new, slug
from metapbt.engine import agents
from metapbt.engine.fixed import score_configs
from metapbt.errors import ConfigError
from metapbt.population.space import SearchSpace

logger = logging.getLogger(__name__)
SCHEMA = "metapbt.calibration/1"


@dataclass(frozen=True)
class Calibration:
    """One task's calibration under one preset and budget.

    Attributes:
        env: Environment id.
        context: Its context.
        preset: PPO preset.
        budget: Environment steps per configuration.
        configs: The configurations tried, in draw order.
        returns: Their final mean evaluation returns (NaN: diverged).
        solved: The environment's usual solved level (``None``: it has none).
        seconds: Wall time of the training and evaluation.
        agent: The learner (files written before agents were: ``ppo``).
    """

    env: str
    context: str
    preset: str
    budget: int
    configs: tuple[Mapping[str, float], ...]
    returns: tuple[float, ...]
    solved: float | None
    seconds: float
    agent: str = "ppo"

    def summary(self) -> dict[str, Any]:
        """Best, quartiles, spread and how many configurations reached the solved level."""
        r = np.asarray(self.returns, dtype=float)
        finite = r[np.isfinite(r)]
        if not finite.size:
            return {"best": None, "learned": False, "diverged": len(r)}
        best = int(np.nanargmax(r))
        q25, median, q75 = np.percentile(finite, [25, 50, 75])
        reached = None if self.solved is None else int((finite >= self.solved).sum())
        return {
            "best": float(r[best]),
            "best_config": dict(self.configs[best]),
            "solved": self.solved,
            "learned": self.solved is None or float(r[best]) >= self.solved,
            "reached": reached,
            "q25": float(q25),
            "median": float(median),
            "q75": float(q75),
            "iqr": float(q75 - q25),
            "std": float(finite.std()),
            "worst": float(finite.min()),
            "diverged": int((~np.isfinite(r)).sum()),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the settings, every configuration's return and the summary."""
        data = asdict(self)
        data["configs"] = [dict(c) for c in self.configs]
        data["returns"] = [None if not np.isfinite(x) else float(x) for x in self.returns]
        return {"schema": SCHEMA, **data, "summary": self.summary()}


def calibrate(
    env: str,
    preset: str,
    budget: int,
    configs: int = 30,
    context: str = "earth",
    seed: int = 0,
    space: SearchSpace | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
    agent: str = "ppo",
) -> Calibration:
    """Train ``configs`` random configurations of ``space`` on one task; see the module doc.

    The configurations are drawn from ``numpy.random.default_rng(seed)``, so every preset and
    environment calibrated with one seed sees the same configurations.

    Raises:
        ConfigError: On an unknown environment or preset, fewer than 2 configurations, or a
            budget that is not a multiple of the preset's batch.
    """
    if configs < 2:
        raise ConfigError(f"a spread needs at least 2 configurations, got {configs}")
    spec = envs.spec(env)
    envs.resolve_context(env, context)
    space = space or agents.kind(agent).default_space()
    rng = np.random.default_rng(seed)
    drawn = tuple(space.sample(rng) for _ in range(configs))
    start = time.perf_counter()
    scores = score_configs(
        env, context, drawn, 1, budget, preset, seed=seed, on_chunk=on_chunk, agent=agent
    )[:, 0]
    seconds = time.perf_counter() - start
    logger.info("calibrated %s %s with %s in %.0f s", env, context, preset, seconds)
    returns = tuple(float(x) for x in scores)
    return Calibration(env, context, preset, budget, drawn, returns, spec.solved, seconds, agent)


def result_path(
    out: Path, env: str, preset: str, context: str, budget: int, seed: int, agent: str = "ppo"
) -> Path:
    """Where `calibrate_or_load` keeps one (env, agent, preset, context, budget, seed).

    ``<env>__<preset>__<context slug>__<budget>__seed<seed>.json`` (another agent than PPO
    prefixes the preset: ``dqn-classic``); a file written before the context was slugged
    (commas kept) is found where it is.
    """
    tag = preset if agent == "ppo" else f"{agent}-{preset}"
    return found_or_new(
        out / f"{slug(env)}__{tag}__{slug(context)}__{budget}__seed{seed}.json",
        out / f"{env}__{tag}__{context}__{budget}__seed{seed}.json",
    )


def calibrate_or_load(
    out: Path,
    env: str,
    preset: str,
    budget: int,
    configs: int = 30,
    context: str = "earth",
    seed: int = 0,
    agent: str = "ppo",
) -> Calibration:
    """`calibrate`, resumable: a result already in ``out`` is read, a new one saved there.

    Raises:
        ConfigError: As `calibrate`, or if a saved result holds another number of
            configurations.
    """
    path = result_path(out, env, preset, context, budget, seed, agent)
    if path.exists():
        return load(path, expected_configs=configs)
    result = calibrate(env, preset, budget, configs, context, seed, agent=agent)
    save(result, path)
    return result


def save(calibration: Calibration, path: Path | str) -> Path:
    """Write ``calibration`` as JSON (atomically); returns the path."""
    path = Path(path)
    write_text_atomic(path, json.dumps(calibration.to_dict(), indent=1))
    return path


def load(path: Path | str, expected_configs: int | None = None) -> Calibration:
    """Read a calibration written by `save`.

    Raises:
        ConfigError: If the file is not a calibration, or holds another number of
            configurations than ``expected_configs``.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        if data.get("schema") != SCHEMA:
            raise ConfigError(f"{path} is not a {SCHEMA} file")
        row = Calibration(
            data["env"],
            data["context"],
            data["preset"],
            int(data["budget"]),
            tuple(data["configs"]),
            tuple(np.nan if x is None else float(x) for x in data["returns"]),
            data["solved"],
            float(data["seconds"]),
            data.get("agent", "ppo"),
        )
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise ConfigError(f"{path} is not a readable calibration ({err!r}); delete it") from None
    if expected_configs is not None and len(row.configs) != expected_configs:
        raise ConfigError(
            f"{path} holds {len(row.configs)} configurations, not {expected_configs}; "
            "delete it or choose another --out"
        )
    return row


def saved(out: Path) -> dict[str, Calibration]:
    """Every calibration saved in ``out`` (named as `result_path` names them), by file name.

    Raises:
        ConfigError: If one of them cannot be read.
    """
    return {path.name: load(path) for path in sorted(Path(out).glob("*__seed*.json"))}


def table(rows: list[Calibration]) -> str:
    """A Markdown table: one line per calibration, by env, preset, context and budget."""
    rows = sorted(rows, key=lambda r: (r.env, r.agent, r.preset, r.context, r.budget))
    lines = [
        "| env | preset | steps | best (solved at) | configs at solved | median | IQR | std "
        "| worst |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s = row.summary()
        preset = row.preset if row.agent == "ppo" else f"{row.agent} {row.preset}"
        if s["best"] is None:
            lines.append(f"| {row.env} | {preset} | {row.budget:,} | all diverged | | | | | |")
            continue
        solved = "-" if row.solved is None else f"{row.solved:g}"
        reached = "-" if s["reached"] is None else f"{s['reached']}/{len(row.returns)}"
        lines.append(
            f"| {row.env} | {preset} | {row.budget:,} | {s['best']:.1f} ({solved}) "
            f"| {reached} | {s['median']:.1f} | {s['q25']:.1f} .. {s['q75']:.1f} "
            f"| {s['std']:.1f} | {s['worst']:.1f} |"
        )
    return "\n".join(lines)

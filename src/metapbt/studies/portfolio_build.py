"""Building portfolios: the three offline steps of the reference (its section 2).

1. ``candidates``: random search per task (``configs`` random configurations x ``seeds``,
   ``steps`` each, hyperparameters fixed); the ``best`` configurations of each task by
   seed-averaged final return become candidates.
2. ``evaluate``: every candidate on every task (``seeds`` each) gives the performance matrix
   tasks x candidates.
3. ``select``: greedy coverage selection on the per-task min-max normalised matrix, leaving the
   target task out (`metapbt.population.portfolio`); writes the portfolio and its heat map.

Directory layout (every file JSON, written atomically, one per task, so a killed step resumes by
skipping the tasks already written and tasks can be computed by parallel workers):

```text
<root>/setup.json                the settings and search space
                                 (metapbt.portfolio-setup/1)
<root>/candidates/<task>.json    step 1 for one task
<root>/evaluation/<task>.json    step 2 on one task
```
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from metapbt import envs
from metapbt._atomic import ensure_writable, write_atomic, write_text_atomic
from metapbt._slug import task_slug
from metapbt.analysis.portfolio_figure import plot_portfolio
from metapbt.engine import agents, presets
from metapbt.engine.fixed import score_configs
from metapbt.envs import PLANETS
from metapbt.envs.contexts import task_id
from metapbt.envs.grids import expand_contexts
from metapbt.envs.sources import refusing_imports
from metapbt.errors import ConfigError
from metapbt.population.portfolio import (
    Candidate,
    Portfolio,
    ScoreMatrix,
    normalise_columns,
    select,
)
from metapbt.population.space import SearchSpace
from metapbt.studies.watchdog import (
    UNWATCHED,
    Progress,
    StallError,
    Watchdog,
    supervise,
    watched_pool,
)

logger = logging.getLogger(__name__)
OnChunk = Callable[[int, int], None] | None
"""Called with (members done, members total) after each chunk of a task."""
SETUP_SCHEMA = "metapbt.portfolio-setup/1"


INTERVALS = 4
"""A candidate's default evaluation length in the preset's default sync intervals: four, as the
reference protocol's 160k steps are four of its 40k intervals."""


@dataclass(frozen=True)
class PortfolioSetup:
    """Settings shared by the three steps (defaults: the reference's classic-control portfolio).

    Args:
        env: Environment id, or several: the tasks are then every env under every context, and
            the portfolio is a general one across environments, as the reference's (its 20
            tasks: 4 classic-control envs x 5 planets). Hyperparameters mean the same in every
            environment, so a candidate from one is scored on all.
        contexts: The tasks' contexts (planets or ``name=value,...``), for every env.
        configs: Random configurations per task in step 1.
        seeds: Seeds per configuration (steps 1 and 2).
        steps: Environment steps per evaluation; ``None``: `INTERVALS` of the preset's
            default sync interval (``classic``: 160k = four 40k intervals, the reference's).
        best: Candidates kept per task. The reference kept 1 from each of 20 tasks (4 envs x
            5 planets); one env's 5 planets with 1 each would leave only 4 candidates once the
            target is left out, too few for a portfolio of 5, hence 2.
        preset: The agent's preset.
        seed: Root seed (task ``i`` draws its configurations from ``(seed, i)``).
        agent: The learner the candidates are scored with (its default space is searched).
    """

    env: str | tuple[str, ...] = "cart_pole"
    contexts: tuple[str, ...] = tuple(PLANETS)
    configs: int = 30
    seeds: int = 4
    steps: int | None = None
    best: int = 2
    preset: str = "classic"
    seed: int = 0
    agent: str = "ppo"

    def __post_init__(self) -> None:
        kind = agents.kind(self.agent)
        if self.steps is None:  # an int from here on (what setup.json records)
            object.__setattr__(self, "steps", INTERVALS * kind.use(self.preset).interval)
        if not self.contexts:
            raise ConfigError("a portfolio needs at least one context")
        if len(set(self.contexts)) != len(self.contexts):
            raise ConfigError(f"duplicate contexts in {list(self.contexts)}")
        for name in ("configs", "seeds", "steps", "best"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.best > self.configs:
            raise ConfigError(f"best ({self.best}) cannot exceed configs ({self.configs})")
        if not self.envs or len(set(self.envs)) != len(self.envs):
            raise ConfigError(f"need distinct environments, got {list(self.envs)}")
        for env, context in self.pairs:
            envs.resolve_context(env, context)
        for env in self.envs:
            if self.agent == "ppo":
                presets.warn_unsuited(self.preset, env)
            batch = kind.preset(self.preset, env=env).batch_size
            if self.steps % batch:
                raise ConfigError(
                    f"steps ({self.steps}) must be a multiple of the {self.preset!r} batch "
                    f"size {batch}"
                )

    @property
    def envs(self) -> tuple[str, ...]:
        """The environments (one, or several for a general portfolio)."""
        return (self.env,) if isinstance(self.env, str) else tuple(self.env)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """(env, context) of every task, env by env, in context order."""
        return [(e, c) for e in self.envs for c in self.contexts]

    @property
    def tasks(self) -> list[str]:
        """Task ids, env by env, in context order."""
        return [task_id(e, c) for e, c in self.pairs]


def parse_contexts(env: str, text: str) -> tuple[str, ...]:
    """``"planets"``, ``"grid:FEATURE"`` or contexts separated by ``;`` (see envs.grids)."""
    return tuple(expand_contexts(env, text))


# --- step 1 -----------------------------------------------------------------------------------


def candidates(
    setup: PortfolioSetup,
    root: Path | str,
    workers: int = 1,
    on_task: Callable[[str], None] | None = None,
    watchdog: Watchdog | None = None,
) -> list[Candidate]:
    """Step 1: random search on every task; returns all candidates (task order, best first).

    Raises:
        ConfigError: If ``root`` holds a portfolio built with other settings.
    """
    root = ensure_writable(root)
    _write_setup(root, setup)
    _run_tasks(root, "candidates", setup.tasks, workers, on_task, watchdog)
    return load_candidates(root)


def _candidates_task(root: Path, task: str, on_chunk: OnChunk = None) -> dict[str, Any]:
    setup, space = read_setup(root)
    index = setup.tasks.index(task)
    rng = np.random.default_rng([setup.seed, index])
    configs = [space.sample(rng) for _ in range(setup.configs)]
    env, context = setup.pairs[index]
    assert setup.steps is not None  # __post_init__ fills it in
    scores = score_configs(
        env,
        context,
        configs,
        setup.seeds,
        setup.steps,
        setup.preset,
        seed=setup.seed * 1000 + index,
        on_chunk=on_chunk,
        agent=setup.agent,
    )
    mean = _nanmean(scores)
    order = np.argsort(np.where(np.isfinite(mean), -mean, np.inf), kind="stable")
    return {
        "task": task,
        "configs": configs,
        "scores": _listed(scores),
        "mean": _listed(mean),
        "best": [int(i) for i in order[: setup.best]],
    }


def load_candidates(root: Path | str) -> list[Candidate]:
    """All candidates of step 1, in task order and best first within a task.

    Raises:
        ConfigError: If step 1 has not finished for every task.
    """
    root = Path(root)
    setup, space = read_setup(root)
    _require(root, "candidates", setup.tasks, "metapbt portfolio candidates")
    found = []
    for task in setup.tasks:
        data = _read_json(_task_path(root, "candidates", task))
        found += [Candidate(space.validate(data["configs"][i]), task) for i in data["best"]]
    return found


# --- step 2 -----------------------------------------------------------------------------------


def evaluate(
    root: Path | str,
    workers: int = 1,
    on_task: Callable[[str], None] | None = None,
    watchdog: Watchdog | None = None,
) -> ScoreMatrix:
    """Step 2: every candidate on every task; returns the (raw, seed-averaged) score matrix.

    Tasks already evaluated are skipped, so a killed evaluation resumes; ``workers`` > 1 runs
    tasks in parallel processes (each a separate JAX program); a ``watchdog`` watches each
    task in a child process.
    """
    root = Path(root)
    setup, _ = read_setup(root)
    load_candidates(root)
    ensure_writable(root)
    _run_tasks(root, "evaluation", setup.tasks, workers, on_task, watchdog)
    return load_matrix(root)


def _evaluation_task(root: Path, task: str, on_chunk: OnChunk = None) -> dict[str, Any]:
    setup, _ = read_setup(root)
    found = load_candidates(root)
    index = setup.tasks.index(task)
    env, context = setup.pairs[index]
    assert setup.steps is not None  # __post_init__ fills it in
    scores = score_configs(
        env,
        context,
        [c.config for c in found],
        setup.seeds,
        setup.steps,
        setup.preset,
        seed=setup.seed * 1000 + 500 + index,
        on_chunk=on_chunk,
        agent=setup.agent,
    )
    return {
        "task": task,
        "candidates": [{**c.config, "source": c.source} for c in found],
        "scores": _listed(scores),
        "mean": _listed(_nanmean(scores)),
    }


def load_matrix(root: Path | str) -> ScoreMatrix:
    """The performance matrix of step 2 (rows: candidates, columns: tasks).

    Raises:
        ConfigError: If a task is missing, or an evaluation used other candidates than step 1's
            current ones (delete ``evaluation/`` and rerun step 2).
    """
    root = Path(root)
    setup, _ = read_setup(root)
    found = load_candidates(root)
    _require(root, "evaluation", setup.tasks, "metapbt portfolio evaluate")
    expected = [{**c.config, "source": c.source} for c in found]
    columns = []
    for task in setup.tasks:
        path = _task_path(root, "evaluation", task)
        data = _read_json(path)
        if data["candidates"] != expected:
            raise ConfigError(
                f"{path} scored other candidates than {root}/candidates holds now; "
                f"delete {root / 'evaluation'} and run `metapbt portfolio evaluate` again"
            )
        columns.append([np.nan if x is None else x for x in data["mean"]])
    return ScoreMatrix(tuple(found), tuple(setup.tasks), np.array(columns, dtype=float).T)


# --- files and execution ----------------------------------------------------------------------

_STEPS: dict[str, Callable[[Path, str, OnChunk], dict[str, Any]]] = {
    "candidates": _candidates_task,
    "evaluation": _evaluation_task,
}


def select_portfolio(
    root: Path | str,
    size: int,
    exclude: str | None = None,
    out: Path | str | None = None,
    env: str | None = None,
) -> tuple[Portfolio, Path]:
    """Step 3: greedy coverage selection on the evaluated matrix, leaving ``exclude`` out.

    ``env`` covers only that environment's tasks of a general (several-env) directory: a
    per-environment portfolio chosen from every environment's candidates.

    Writes the portfolio (``out``, default ``<root>/portfolio.json``) and its heat map (the same
    path with ``.png``); returns the portfolio and its path.

    Raises:
        ConfigError: If ``env`` is not one of the directory's environments.
    """
    setup, space = read_setup(root)
    columns = None
    if env is not None:
        if env not in setup.envs:
            raise ConfigError(f"{root} has no tasks of {env!r}; its envs are {list(setup.envs)}")
        columns = [task_id(e, c) for e, c in setup.pairs if e == env]
    chosen = select(space, load_matrix(root), size, exclude, columns)
    keys = ("env", "agent", "preset", "steps", "seeds", "configs")
    provenance = {k: getattr(setup, k) for k in keys}
    if env is not None:
        provenance["covers"] = env
    chosen = dataclasses.replace(chosen, provenance=provenance)
    path = chosen.save(out or Path(root) / "portfolio.json")
    write_figure(chosen, path.with_suffix(".png"))
    return chosen, path


def write_figure(portfolio: Portfolio, path: Path) -> Path:
    """The heat map of the matrix ``portfolio`` was selected on, its picks numbered (atomic)."""
    matrix = portfolio.matrix
    labels = [
        f"{c.source} · " + ", ".join(f"{k}={v:.2g}" for k, v in c.config.items())
        for c in matrix.candidates
    ]
    picks = [matrix.candidates.index(entry) for entry in portfolio.entries]
    target = f", target {portfolio.target} left out" if portfolio.target else ""
    title = f"portfolio of {len(portfolio.entries)} (red: selection order{target})"
    normalised = normalise_columns(matrix.scores)
    return write_atomic(
        path, lambda tmp: plot_portfolio(normalised, matrix.tasks, labels, picks, tmp, title)
    )


def read_setup(root: Path | str) -> tuple[PortfolioSetup, SearchSpace]:
    """The settings and search space stored in ``root/setup.json``."""
    path = Path(root) / "setup.json"
    if not path.exists():
        raise ConfigError(f"{root} is not a portfolio directory (no setup.json); run step 1")
    data = _read_json(path)
    if data.get("schema") != SETUP_SCHEMA:
        raise ConfigError(f"{path} is not a {SETUP_SCHEMA} file")
    try:
        fields = {**data["setup"], "contexts": tuple(data["setup"]["contexts"])}
        if isinstance(fields["env"], list):
            fields["env"] = tuple(fields["env"])
        with refusing_imports(str(path)):  # a shared portfolio directory runs no one's code
            return PortfolioSetup(**fields), SearchSpace.from_dict(data["space"])
    except (KeyError, TypeError) as err:
        raise ConfigError(f"{path} is malformed: {err!r}") from None


def _write_setup(root: Path, setup: PortfolioSetup) -> None:
    path = root / "setup.json"
    if path.exists():
        stored, _ = read_setup(root)
        if stored != setup:
            raise ConfigError(
                f"{root} holds a portfolio built with {stored}; choose another directory "
                f"or repeat those settings"
            )
        return
    data = {
        "schema": SETUP_SCHEMA,
        "setup": dataclasses.asdict(setup),
        "space": agents.kind(setup.agent).default_space().to_dict(),
    }
    _write_json(path, data)


def _run_tasks(
    root: Path,
    step: str,
    tasks: Sequence[str],
    workers: int,
    on_task: Callable[[str], None] | None,
    watchdog: Watchdog | None = None,
) -> None:
    """Compute every task of ``step`` not written yet (``workers`` at a time).

    With a ``watchdog`` (or ``workers`` > 1) each task runs in a child process; a watched one
    is restarted when no chunk of its members finishes in time (a task has no checkpoints: it
    starts again), and `StallError` ends the step after the
    other tasks, leaving the stalled one to a rerun.
    """
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    todo = [t for t in tasks if not _task_path(root, step, t).exists()]
    for task in tasks:
        if task not in todo and on_task is not None:
            on_task(task)
    if watchdog is None and workers == 1:
        for task in todo:
            _finish(root, step, task)
            if on_task is not None:
                on_task(task)
        return
    watch = watchdog or UNWATCHED

    def one(task: str) -> None:
        supervise(task_work, (root, step, task), watch, [root / step], label=f"{step} {task}")

    errors = []
    with watched_pool(workers) as pool:
        futures = {pool.submit(one, t): t for t in todo}
        for future in as_completed(futures):
            try:
                future.result()
            except StallError as err:
                errors.append(err)
                continue
            if on_task is not None:
                on_task(futures[future])
    if errors:
        raise errors[0]


def task_work(root: Path, step: str, task: str, progress: Progress) -> None:
    """One task in a watched child: each finished chunk of members counts as a round."""
    progress("start")
    _finish(root, step, task, lambda done, total: progress("round", done))


def _finish(root: Path, step: str, task: str, on_chunk: OnChunk = None) -> None:
    logger.info("%s: %s", step, task)
    _write_json(_task_path(root, step, task), _STEPS[step](root, task, on_chunk))


def _task_path(root: Path, step: str, task: str) -> Path:
    return root / step / f"{task_slug(task)}.json"


def _require(root: Path, step: str, tasks: Sequence[str], command: str) -> None:
    missing = [t for t in tasks if not _task_path(root, step, t).exists()]
    if missing:
        raise ConfigError(f"{root}: {step} missing for {missing}; run `{command} {root}` first")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not valid JSON ({err}); delete it to recompute") from None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=1))


def _nanmean(scores: np.ndarray) -> np.ndarray:
    finite = np.isfinite(scores)
    total = np.where(finite, scores, 0.0).sum(axis=-1)
    count = finite.sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _listed(values: np.ndarray) -> list[Any]:
    return np.where(np.isfinite(values), values, None).tolist()  # type: ignore[call-overload]  # None: JSON null

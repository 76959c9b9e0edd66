"""Aggregate scores with stratified-bootstrap confidence intervals (Agarwal et al., NeurIPS 2021).

The statistics of ``rliable``, written here because ``rliable`` does not import with our stack
(its dependency ``arch`` 7.2 calls pandas' ``deprecate_kwarg`` with the pre-3.0 signature and
raises ``TypeError`` on import under pandas 3). The formulas are rliable's:

- **IQM**: the interquartile mean of every (run, task) score pooled, i.e.
  ``scipy.stats.trim_mean(scores, 0.25, axis=None)``.
- **Probability of improvement** ``P(X > Y)``: per task, the Mann-Whitney U statistic of X's
  runs against Y's divided by ``N_x * N_y`` (the share of run pairs X wins, a tie counting 1/2),
  then the mean over tasks.
- **Stratified bootstrap**: each replicate resamples the runs of every task with replacement,
  independently per task (and, for a pair of methods, independently per method); the interval
  is the percentile interval of the statistic over the replicates.

Scores are a matrix ``[runs, tasks]`` per method. `final_scores` builds them from a study's
results table, min-max normalising each task over every run of every method.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import trim_mean

from metapbt.analysis.compare import EPS, RESULT_COLUMNS, _require
from metapbt.errors import ConfigError

logger = logging.getLogger(__name__)
Statistic = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class Interval:
    """A point estimate and its confidence interval."""

    value: float
    low: float
    high: float


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean of all scores (the middle 50 %, pooled over runs and tasks)."""
    return float(trim_mean(np.asarray(scores, dtype=float), 0.25, axis=None))


def _iqm_many(replicates: np.ndarray) -> np.ndarray:
    """IQM of every replicate ``[reps, runs, tasks]``."""
    return trim_mean(replicates.reshape(len(replicates), -1), 0.25, axis=1)


def _mean_many(replicates: np.ndarray) -> np.ndarray:
    return replicates.reshape(len(replicates), -1).mean(axis=1)


AGGREGATES: dict[str, tuple[Statistic, Callable[[np.ndarray], np.ndarray]]] = {
    "iqm": (iqm, _iqm_many),
    "mean": (lambda s: float(np.mean(s)), _mean_many),
}
"""Aggregate name -> (statistic of one matrix, the same over a stack of replicates)."""


def _improvement_many(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``P(X > Y)`` of stacks ``x [reps, N, T]``, ``y [reps, M, T]`` (ties count 1/2)."""
    a, b = x[:, :, None, :], y[:, None, :, :]
    wins = (a > b).mean(axis=(1, 2)) + 0.5 * (a == b).mean(axis=(1, 2))  # [reps, T]
    return wins.mean(axis=1)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """``P(X > Y)``: the chance that a run of X beats a run of Y on a random task.

    Per task this is the Mann-Whitney U statistic over ``N_x * N_y``, computed as the share of
    (x run, y run) pairs that X wins, ties counting 1/2.

    Args:
        x: Scores ``[runs_x, tasks]`` of method X.
        y: Scores ``[runs_y, tasks]`` of method Y (the same tasks, in the same order).
    """
    x, y = _matrix(x), _matrix(y)
    if x.shape[1] != y.shape[1]:
        raise ConfigError(f"x and y must cover the same tasks, got {x.shape} and {y.shape}")
    return float(_improvement_many(x[None], y[None])[0])


def _resample(scores: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """``reps`` stratified replicates ``[reps, runs, tasks]``.

    Each task's runs are drawn with replacement, independently per task and replicate.
    """
    runs, tasks = scores.shape
    rows = rng.integers(0, runs, size=(reps, runs, tasks))
    return np.take_along_axis(np.broadcast_to(scores, (reps, runs, tasks)), rows, axis=1)


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_interval(
    scores: np.ndarray,
    aggregate: str = "iqm",
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """An aggregate of ``scores [runs, tasks]`` with its stratified-bootstrap interval.

    ``aggregate`` is ``"iqm"`` or ``"mean"``; the interval is the percentile interval.
    """
    if aggregate not in AGGREGATES:
        raise ConfigError(f"unknown aggregate {aggregate!r}; known: {', '.join(AGGREGATES)}")
    one, many = AGGREGATES[aggregate]
    scores = _matrix(scores)
    values = many(_resample(scores, reps, np.random.default_rng(seed)))
    return Interval(one(scores), *_percentiles(values, confidence))


def improvement_interval(
    x: np.ndarray, y: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """``P(X > Y)`` with its interval (X's and Y's runs resampled independently per task)."""
    point = probability_of_improvement(x, y)
    rng = np.random.default_rng(seed)
    values = _improvement_many(_resample(_matrix(x), reps, rng), _resample(_matrix(y), reps, rng))
    return Interval(point, *_percentiles(values, confidence))


def _matrix(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or 0 in scores.shape:
        raise ConfigError(f"scores must be a non-empty [runs, tasks] matrix, got {scores.shape}")
    if not np.isfinite(scores).all():
        raise ConfigError("scores hold NaN or infinite values; drop or fill those runs first")
    return scores


def final_scores(results: pd.DataFrame, step: int | None = None) -> dict[str, np.ndarray]:
    """Normalised final scores per method, ``[seeds, tasks]``, ready for the statistics above.

    Each run's score is its best member's return at ``step`` (default: each task's own last
    step, so tasks run under different budgets, as LunarLander beside classic control, all
    count). Each task
    is min-max normalised over every run of every method at that step, so 0 is the task's
    worst run and 1 its best; a run whose return is NaN (it diverged) counts as 0. Only tasks
    that every method has, and only the seeds every method has on every such task, are kept
    (runs not there yet, such as cells of a study still running, are left out, not scored),
    so the matrices share their rows' seeds and their columns.

    Raises:
        ConfigError: If no task has every method at that step, or no seed is common to all.
    """
    _require(results, RESULT_COLUMNS, "results")
    if step is not None:
        return _normalised(results[results["step"] == step], f"at step {step}")
    last = results.groupby("task")["step"].transform("max")
    return _normalised(results[results["step"] == last], "at each task's last step")


def anytime_scores(results: pd.DataFrame) -> dict[str, np.ndarray]:
    """Normalised anytime scores per method, ``[seeds, tasks]``: the area under each run's curve.

    Each run's score is its best member's return averaged over every sync point (the mean
    height of its learning curve, so a run that gets there sooner scores higher), then
    normalised and filtered as `final_scores` does; a run that diverged at any sync
    point counts 0. Only runs with every sync point of their task's longest run are scored (a
    run still going is left out; tasks may have different numbers of sync points). Where the
    final returns of most runs tie (a task every method solves), this still separates the
    methods, as the reference's ranks averaged over rounds do.

    Raises:
        ConfigError: If no task has every method, or no seed is common to all.
    """
    _require(results, RESULT_COLUMNS, "results")
    keys = ["task", "method", "seed"]
    grouped = results.groupby(keys)["best"]
    counts = grouped.size()
    mean = grouped.apply(lambda best: best.mean(skipna=False))
    longest = counts.groupby(level="task").transform("max")
    whole = counts[counts == longest].index
    return _normalised(mean.loc[whole].reset_index(), "over every sync point")


def _normalised(at: pd.DataFrame, where: str) -> dict[str, np.ndarray]:
    """Per method ``[seeds, tasks]`` of the ``best`` column (one row per run), min-max per task."""
    methods = sorted(at["method"].unique())
    complete = at.groupby("task")["method"].nunique()
    tasks = sorted(complete[complete == len(methods)].index)
    if not tasks:
        raise ConfigError(f"no task has results of every method {where}")
    at = at[at["task"].isin(tasks)]
    seed_sets = at.groupby(["task", "method"])["seed"].apply(frozenset)
    seeds = sorted(frozenset.intersection(*seed_sets))
    if not seeds:
        raise ConfigError(f"no seed has results of every method on every task {where}")
    dropped = len(at) - len(seeds) * len(tasks) * len(methods)
    if dropped:
        logger.warning("interval estimates leave out %d runs missing elsewhere", dropped)
    at = at[at["seed"].isin(seeds)]
    low = at.groupby("task")["best"].min()
    high = at.groupby("task")["best"].max()
    out = {}
    for method in methods:
        table = at[at["method"] == method].pivot(index="seed", columns="task", values="best")
        table = table.reindex(index=seeds, columns=tasks)
        norm = (table - low[tasks]) / (high[tasks] - low[tasks] + EPS)
        out[method] = norm.fillna(0.0).to_numpy()
    return out


def interval_table(
    scores: Mapping[str, np.ndarray], reps: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """IQM and mean of each method with their intervals, best IQM first."""
    rows = []
    for method, matrix in scores.items():
        q = bootstrap_interval(matrix, "iqm", reps, seed=seed)
        m = bootstrap_interval(matrix, "mean", reps, seed=seed)
        rows.append([method, q.value, q.low, q.high, m.value, m.low, m.high])
    columns = ["method", "iqm", "iqm_low", "iqm_high", "mean", "mean_low", "mean_high"]
    return pd.DataFrame(rows, columns=columns).sort_values("iqm", ascending=False)


def improvement_table(
    scores: Mapping[str, np.ndarray], reps: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """``P(X > Y)`` with its interval for every ordered pair of different methods."""
    rows = []
    for x, sx in scores.items():
        for y, sy in scores.items():
            if x != y:
                p = improvement_interval(sx, sy, reps, seed=seed)
                rows.append([x, y, p.value, p.low, p.high])
    return pd.DataFrame(rows, columns=["x", "y", "p", "low", "high"])

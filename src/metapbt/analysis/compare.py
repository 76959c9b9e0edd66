"""Compare methods across tasks: seed averages, normalised scores, ranks and critical differences.

This is the reference protocol's final comparison on a long ``results``
table with one row per (task, method, seed, step) and the columns ``task`` (str), ``method`` (str),
``seed`` (int), ``step`` (int, environment steps per member at that sync point) and ``best`` (float,
the best population member's evaluation return at that step, NaN when missing).

Every function is pure: it takes DataFrames and returns new ones. The per-step comparisons work on
the *score table*, indexed by (step, task) with one column per method, holding seed-averaged
returns; a (step, task) row with a missing method is left out everywhere (with a logged warning).
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from metapbt.errors import ConfigError

logger = logging.getLogger(__name__)

RESULT_COLUMNS = ("task", "method", "seed", "step", "best")
AVERAGE_COLUMNS = ("task", "method", "step", "score")
RANK_COLUMNS = ("task", "method", "step", "rank")
MEAN_ROW = "mean"
"""The ``task`` label of the final table's row that averages raw returns over tasks."""
EPS = 1e-8
"""Added to every min-max denominator, as in the reference."""
AUTORANK_MIN_ROWS = 5
"""autorank refuses tables with fewer rows than this."""


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"{what} needs the columns {list(columns)}; {missing} are missing "
            f"(got {list(frame.columns)}). Pass the table produced by the matching function."
        )


def seed_average(results: pd.DataFrame) -> pd.DataFrame:
    """Average the best member's return over seeds.

    NaN returns are skipped: a (task, method, step) averages only its finite seeds, ``n_seeds``
    says how many there were, and it is NaN only when every seed is NaN. ``sem`` is the standard
    error of that mean (sample standard deviation, ddof 1, over sqrt(n_seeds)); NaN with one seed.

    Args:
        results: Long table with the columns ``task, method, seed, step, best``.

    Returns:
        One row per (task, method, step), sorted, with the columns
        ``task, method, step, score, sem, n_seeds``.
    """
    _require(results, RESULT_COLUMNS, "results")
    if results.duplicated(["task", "method", "seed", "step"]).any():
        raise ConfigError(
            "results has more than one row for some (task, method, seed, step); expected one row "
            "each. Deduplicate the table (or give repeated runs distinct seeds)."
        )
    grouped = results.groupby(["task", "method", "step"], sort=True)["best"]
    out = grouped.agg(score="mean", sem="sem", n_seeds="count").reset_index()
    out["n_seeds"] = out["n_seeds"].astype(int)
    return out


def score_table(avg: pd.DataFrame) -> pd.DataFrame:
    """Per step, the task x method table of seed-averaged scores, stacked over steps.

    A (step, task) row where some method has no score (absent or NaN) is dropped, and the dropped
    tasks are named in a logged warning; the reference drops them the same way.

    Args:
        avg: The output of `seed_average` (columns ``task, method, step, score``).

    Returns:
        A frame indexed by (step, task), one column per method (sorted), complete rows only.

    Raises:
        ConfigError: If no (step, task) row has a score for every method.
    """
    _require(avg, AVERAGE_COLUMNS, "avg")
    wide = avg.set_index(["step", "task", "method"])["score"].unstack("method").sort_index()
    wide.columns.name = None
    incomplete = wide.isna().any(axis=1)
    if incomplete.any():
        missing = wide[incomplete].isna()
        by_task: dict[str, set[str]] = {}
        for (_, task), row in missing.iterrows():
            by_task.setdefault(str(task), set()).update(row.index[row.to_numpy()])
        logger.warning(
            "Dropped %d (step, task) rows with a missing method: %s",
            int(incomplete.sum()),
            "; ".join(f"{task} (missing {sorted(ms)})" for task, ms in sorted(by_task.items())),
        )
    table = wide[~incomplete]
    if table.empty:
        raise ConfigError(
            f"No (step, task) has a score for every method {list(wide.columns)}; there is nothing "
            "to compare. Check that every method ran on the same tasks and steps."
        )
    return table


def _long(table: pd.DataFrame, values: np.ndarray, name: str) -> pd.DataFrame:
    wide = pd.DataFrame(values, index=table.index, columns=table.columns).reset_index()
    long = wide.melt(id_vars=["step", "task"], var_name="method", value_name=name)
    return long[["task", "method", "step", name]].sort_values(
        ["step", "task", "method"], ignore_index=True
    )


def normalised_scores(avg: pd.DataFrame) -> pd.DataFrame:
    """Min-max normalise each task's seed-averaged score across methods, at every step.

    normalised = (x - min) / (max - min + 1e-8) over the methods of one (step, task) row, so the
    worst method scores 0 and the best just under 1 (all 0 when every method ties).

    Args:
        avg: The output of `seed_average`.

    Returns:
        Long table with the columns ``task, method, step, normalised``.
    """
    table = score_table(avg)
    x = table.to_numpy(dtype=float)
    low = x.min(axis=1, keepdims=True)
    high = x.max(axis=1, keepdims=True)
    return _long(table, (x - low) / (high - low + EPS), "normalised")


def ranks(avg: pd.DataFrame) -> pd.DataFrame:
    """Rank the methods within each (task, step): 1 is the best, ties get the average rank.

    Args:
        avg: The output of `seed_average`.

    Returns:
        Long table with the columns ``task, method, step, rank``.
    """
    table = score_table(avg)
    return _long(table, rankdata(-table.to_numpy(dtype=float), axis=1), "rank")


def summarise_over_tasks(long: pd.DataFrame, value: str) -> pd.DataFrame:
    """Mean and standard error over tasks of a per-(task, method, step) value.

    Args:
        long: A long table with the columns ``task, method, step`` and ``value``.
        value: The column to summarise (e.g. ``"normalised"`` or ``"rank"``).

    Returns:
        One row per (step, method) with the columns ``step, method, mean, se, n_tasks``; ``se`` is
        the sample standard deviation (ddof 1) over sqrt(n_tasks), NaN with a single task.
    """
    _require(long, ("task", "method", "step", value), "long")
    grouped = long.groupby(["step", "method"], sort=True)[value]
    out = grouped.agg(mean="mean", se="sem", n_tasks="count").reset_index()
    out["n_tasks"] = out["n_tasks"].astype(int)
    return out


@dataclass(frozen=True, eq=False)
class AverageRanks:
    """Mean ranks over tasks, per step and over the whole run.

    Attributes:
        per_step: Mean rank over tasks, indexed by step, one column per method.
        se: Standard error of ``per_step`` over tasks (same shape).
        overall: Mean rank per method over every (step, task) row: the stacked table's mean rank.
        final: Mean rank per method at the last step.
        order: Methods best first: by ``overall``, then ``final`` (the reference's tie-break),
            then name.
    """

    per_step: pd.DataFrame
    se: pd.DataFrame
    overall: pd.Series
    final: pd.Series
    order: tuple[str, ...]


def average_ranks(rank_df: pd.DataFrame) -> AverageRanks:
    """Average the ranks of `ranks` over tasks, per step and overall.

    Args:
        rank_df: Long table with the columns ``task, method, step, rank``.

    Returns:
        The per-step means and standard errors, the overall and final mean ranks, and the order.
    """
    _require(rank_df, RANK_COLUMNS, "rank_df")
    summary = summarise_over_tasks(rank_df, "rank")
    per_step = summary.pivot(index="step", columns="method", values="mean")
    se = summary.pivot(index="step", columns="method", values="se")
    per_step.columns.name = se.columns.name = None
    overall = rank_df.groupby("method")["rank"].mean()
    final = per_step.iloc[-1]
    order = sorted(overall.index, key=lambda m: (overall[m], final[m], str(m)))
    return AverageRanks(
        per_step=per_step,
        se=se,
        overall=overall.rename("overall"),
        final=final.rename("final"),
        order=tuple(str(m) for m in order),
    )


@dataclass(frozen=True, eq=False)
class CriticalDifference:
    """The outcome of one autorank test over a score table.

    Attributes:
        mean_ranks: Mean rank per method (1 = best), best first.
        cd: The Nemenyi critical difference in mean rank, or None when autorank used another
            post-hoc path (with two methods it runs a one-sided Wilcoxon test and gives no CD).
        p_value: The omnibus test's p-value (Friedman; Wilcoxon with two methods).
        omnibus: The omnibus test autorank ran (``"friedman"`` or ``"wilcoxon"``).
        n_rows: How many (step, task) rows the test saw.
        alpha: The family-wise significance level.
        result: autorank's ``RankResult``, e.g. for ``autorank.plot_stats``.
    """

    mean_ranks: pd.Series
    cd: float | None
    p_value: float
    omnibus: str
    n_rows: int
    alpha: float
    result: Any

    @property
    def significant(self) -> bool:
        """Whether the omnibus test rejects "all methods perform the same" at ``alpha``."""
        return bool(self.p_value < self.alpha)

    def differs(self) -> pd.DataFrame | None:
        """Pairs of methods whose mean ranks differ by more than the CD (the reference's groups).

        Returns:
            A symmetric boolean method x method frame, or None when there is no CD.
        """
        if self.cd is None:
            return None
        r = self.mean_ranks.to_numpy(dtype=float)
        gap = np.abs(r[:, None] - r[None, :])
        return pd.DataFrame(
            gap > self.cd, index=self.mean_ranks.index, columns=self.mean_ranks.index
        )


def critical_difference(
    avg: pd.DataFrame, alpha: float = 0.05, step: int | None = None
) -> CriticalDifference:
    """Friedman test with the Nemenyi critical difference, through autorank.

    With ``step=None`` the per-step task x method tables of every step are stacked as independent
    rows, as the reference does; that pseudo-replicates tasks, so read the CD as
    descriptive. Tests are forced onto autorank's non-parametric path
    (``force_mode="nonparametric"``), so the CD is never lost to a parametric ANOVA/Tukey choice.
    autorank's own printing is captured and logged at DEBUG level.

    Args:
        avg: The output of `seed_average`.
        alpha: Family-wise significance level, in (0, 1).
        step: Test only this step's table instead of all steps stacked.

    Returns:
        Mean ranks, CD, p-value and autorank's result.

    Raises:
        ConfigError: With fewer than two methods, fewer than five complete rows, an unknown step,
            or when autorank rejects the table.
    """
    table = score_table(avg)
    if step is not None:
        if step not in table.index.get_level_values("step"):
            steps = sorted(set(table.index.get_level_values("step")))
            raise ConfigError(f"step {step} has no complete task; complete steps are {steps}.")
        table = table.xs(step, level="step")
    if table.shape[1] < 2:
        raise ConfigError(
            f"A critical difference needs at least two methods; got {list(table.columns)}."
        )
    if len(table) < AUTORANK_MIN_ROWS:
        raise ConfigError(
            f"A critical difference needs at least {AUTORANK_MIN_ROWS} complete (step, task) rows; "
            f"got {len(table)}. Add tasks, or stack all steps (step=None)."
        )
    from autorank import autorank  # heavy (statsmodels, baycomp): imported only when used

    data = table.reset_index(drop=True)
    data.columns = [str(c) for c in data.columns]
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            result = autorank(
                data, alpha=float(alpha), order="descending", force_mode="nonparametric"
            )
    except ValueError as err:
        raise ConfigError(f"autorank rejected the {data.shape} score table: {err}") from err
    if captured.getvalue():
        logger.debug("autorank output:\n%s", captured.getvalue())
    mean_ranks = result.rankdf["meanrank"].astype(float).sort_values(kind="stable")
    return CriticalDifference(
        mean_ranks=mean_ranks.rename("mean_rank"),
        cd=None if result.cd is None else float(result.cd),
        p_value=float(result.pvalue),
        omnibus=str(result.omnibus),
        n_rows=len(data),
        alpha=float(alpha),
        result=result,
    )


def _mark_best(group: pd.DataFrame) -> pd.DataFrame:
    group = group.copy()
    group["best"] = False
    group["clear_best"] = False
    finite = group[np.isfinite(group["mean"])]
    if len(finite) < 2:
        return group
    top = finite["mean"].max()
    leaders = finite.index[finite["mean"] == top]
    if len(leaders) == 1:
        lead = leaders[0]
        group.loc[lead, "best"] = True
        others = finite.drop(index=lead)
        upper = (others["mean"] + others["sem"]).max()
        lower = group.loc[lead, "mean"] - group.loc[lead, "sem"]
        group.loc[lead, "clear_best"] = bool(lower > upper)  # False when any SEM is NaN
    return group


def final_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean ± SEM over seeds of the best member's return at each task's final step.

    The final step of a task is the largest step any method reached on it; a method without that
    step gets a NaN row. The ``mean`` row (``task == MEAN_ROW``) averages the raw per-task means
    over the tasks where every method has one (returns of different environments have different
    scales, as in the reference); its SEM is sqrt(sum of SEM^2) / n_tasks.

    ``best`` marks the strictly highest mean of a task (no mark on a tie); ``clear_best`` marks a
    best whose mean - SEM lies above every other method's mean + SEM.

    Args:
        results: Long table with the columns ``task, method, seed, step, best``.

    Returns:
        Columns ``task, method, step, mean, sem, n_seeds, best, clear_best``, tasks sorted and the
        ``mean`` row last.
    """
    avg = seed_average(results).rename(columns={"score": "mean"})
    methods = sorted(avg["method"].unique())
    last = avg.groupby("task")["step"].transform("max")
    final = avg[avg["step"] == last].set_index(["task", "method"])
    full = pd.MultiIndex.from_product(
        [sorted(avg["task"].unique()), methods], names=["task", "method"]
    )
    final = final.reindex(full)
    final["step"] = final.groupby(level="task")["step"].transform("max")
    final["n_seeds"] = final["n_seeds"].fillna(0)
    means = final["mean"].unstack("method")
    complete = means.dropna().index
    if len(complete) < len(means):
        logger.warning(
            "The mean row leaves out tasks with a missing method: %s",
            sorted(set(means.index) - set(complete)),
        )
    sems = final["sem"].unstack("method").loc[complete]
    mean_sem = np.sqrt((sems**2).sum(skipna=False)) / len(complete) if len(complete) else np.nan
    mean_row = pd.DataFrame(
        {
            "task": MEAN_ROW,
            "method": methods,
            "step": pd.NA,
            "mean": means.loc[complete].mean().reindex(methods).to_numpy(),
            "sem": pd.Series(mean_sem, index=methods).to_numpy(dtype=float),
            "n_seeds": pd.NA,
        }
    )
    table = pd.concat([final.reset_index(), mean_row], ignore_index=True)
    table = table.astype({"step": "Int64", "n_seeds": "Int64"})
    table = table.groupby("task", sort=False, group_keys=False)[list(table.columns)].apply(
        _mark_best
    )
    return table[["task", "method", "step", "mean", "sem", "n_seeds", "best", "clear_best"]]

"""A comparison report: figures (PNG) and one Markdown page that embeds them.

``build_report`` draws, from a long ``results`` table (see `metapbt.analysis.compare`), the
normalised score and mean rank over time, a critical-difference diagram, per-task learning curves
and, optionally, the hyperparameter schedules of chosen runs; ``report.md`` links them all.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metapbt._atomic import write_atomic
from metapbt.analysis import compare
from metapbt.analysis.context_maps import Features, context_section
from metapbt.analysis.interval_report import interval_section
from metapbt.analysis.render import colours, fmt, md_table, pyplot, save_png
from metapbt.analysis.run_figure import plot_run
from metapbt.errors import ConfigError

logger = logging.getLogger(__name__)

HISTORY_COLUMNS = ("step", "member", "reward", "clone_source")
"""History columns that are not hyperparameters."""
_STEP_LABEL = "environment steps per member"


def _safe_name(name: str) -> str:
    """A file-name stem that needs no escaping in a Markdown link."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip()).strip("._") or "unnamed"


def _unique_names(names: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        stem, k = _safe_name(name), 1
        while stem in used:
            k += 1
            stem = f"{_safe_name(name)}_{k}"
        used.add(stem)
        out[name] = stem
    return out


def _band(
    ax: Any, x: np.ndarray, mean: np.ndarray, se: np.ndarray, label: str, colour: str | None
) -> None:
    (line,) = ax.plot(x, mean, marker="o", ms=3, lw=1.5, label=label, color=colour)
    se = np.nan_to_num(se, nan=0.0)  # one task or seed: no spread to draw
    ax.fill_between(x, mean - se, mean + se, color=line.get_color(), alpha=0.2, lw=0)


def plot_over_tasks(
    summary: pd.DataFrame,
    order: list[str],
    ylabel: str,
    path: Path,
    title: str = "",
    invert: bool = False,
    colour: Mapping[str, str] | None = None,
) -> None:
    """Write a PNG of a per-method mean ± SE over tasks against step.

    Args:
        summary: Output of `compare.summarise_over_tasks`.
        order: Methods in legend order.
        ylabel: y-axis label.
        path: Output PNG path.
        title: Figure title.
        invert: Put low values at the top (for ranks, where 1 is the best).
        colour: Line colour per method; matplotlib's cycle when None.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for method in order:
        rows = summary[summary["method"] == method]
        x, mean, se = (rows[c].to_numpy() for c in ("step", "mean", "se"))
        _band(ax, x, mean, se, method, None if colour is None else colour.get(method))
    if invert:
        ax.invert_yaxis()
    ax.set_xlabel(_STEP_LABEL)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    fig.tight_layout()
    save_png(fig, path)


def plot_task_curves(
    avg: pd.DataFrame, task: str, path: Path, colour: Mapping[str, str] | None = None
) -> None:
    """Write a PNG of one task's learning curves: best member's return, mean ± SEM over seeds.

    Args:
        avg: Output of `compare.seed_average`.
        task: The task to draw.
        path: Output PNG path.
        colour: Line colour per method; matplotlib's cycle when None.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    rows = avg[avg["task"] == task]
    for method, curve in rows.groupby("method", sort=True):
        _band(
            ax,
            curve["step"].to_numpy(),
            curve["score"].to_numpy(),
            curve["sem"].to_numpy(),
            str(method),
            None if colour is None else colour.get(str(method)),
        )
    ax.set_xlabel(_STEP_LABEL)
    ax.set_ylabel("best member's return")
    ax.set_title(task)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)


def plot_critical_difference(cd: compare.CriticalDifference, path: Path) -> str | None:
    """Draw autorank's critical-difference diagram.

    Args:
        cd: Output of `compare.critical_difference`.
        path: Output PNG path.

    Returns:
        None when the diagram was written, otherwise why not (a note for the report).
    """
    if cd.cd is None:
        return (
            f"No diagram: autorank ran a {cd.omnibus} test, which has no critical difference "
            "(it does so with two methods)."
        )
    from autorank import plot_stats

    pyplot()
    ax = plot_stats(cd.result, allow_insignificant=True)
    if ax is None:
        return "No diagram: autorank drew nothing for this test."
    save_png(ax.figure, path)
    return None


def _final_markdown(table: pd.DataFrame) -> str:
    methods = sorted(table["method"].unique())
    rows = []
    for task, group in table.groupby("task", sort=False):
        by_method = group.set_index("method")
        cells = [str(task)]
        for m in methods:
            r = by_method.loc[m]
            text = f"{fmt(r['mean'])} ± {fmt(r['sem'])}" if np.isfinite(r["mean"]) else "—"
            if r["best"]:
                text = f"**{text}**"
            if r["clear_best"]:
                text += " †"
            cells.append(text)
        rows.append(cells)
    return md_table(["task", *methods], rows)


def _rank_markdown(ar: compare.AverageRanks) -> str:
    rows = [[m, fmt(ar.overall[m]), fmt(ar.final[m])] for m in ar.order]
    return md_table(["method", "average rank (all steps)", "rank at final step"], rows)


def _dropped_note(avg: pd.DataFrame) -> list[str]:
    pairs = set(avg[["step", "task"]].itertuples(index=False, name=None))
    dropped = pairs - set(compare.score_table(avg).index)
    if not dropped:
        return []
    tasks = sorted({task for _, task in dropped})
    return [
        f"{len(dropped)} (step, task) rows with a missing method are left out of the "
        f"normalised scores, ranks and test; tasks: {', '.join(map(str, tasks))}.",
        "",
    ]


def _cd_sentence(cd: compare.CriticalDifference) -> str:
    verdict = "significant" if cd.significant else "not significant"
    text = f"{cd.omnibus} test p-value **{cd.p_value:.3g}** ({verdict} at alpha = {cd.alpha})"
    if cd.cd is None:
        return text + "; this test has no critical difference."
    return text + f", Nemenyi critical difference **{cd.cd:.3f}** in mean rank."


def _cd_markdown(avg: pd.DataFrame, out_dir: Path, alpha: float) -> list[str]:
    lines = ["## Critical difference", ""]
    path = out_dir / "critical_difference.png"
    path.unlink(missing_ok=True)  # never leave a diagram from an earlier report in this folder
    try:
        cd = compare.critical_difference(avg, alpha=alpha)
    except ConfigError as err:  # recorded in the report, not swallowed
        return [*lines, f"No test: {err}", ""]
    lines += [
        "autorank (non-parametric path forced) on the per-step task × method tables of all "
        f"steps, stacked as {cd.n_rows} independent rows as in the reference: {_cd_sentence(cd)} "
        "Stacking steps pseudo-replicates tasks, so read this test as descriptive.",
        "",
        md_table(["method", "mean rank"], [[str(m), fmt(r)] for m, r in cd.mean_ranks.items()]),
        "",
    ]
    differs = cd.differs()
    if differs is not None:
        pairs = [
            f"{a} vs {b}"
            for i, a in enumerate(differs.index)
            for b in differs.columns[i + 1 :]
            if differs.loc[a, b]
        ]
        lines += [f"Mean ranks further apart than the CD: {', '.join(pairs) or 'none'}.", ""]
    note = plot_critical_difference(cd, path)
    lines += [note if note else "![critical difference](critical_difference.png)", ""]
    last = int(avg["step"].max())
    try:
        fin = compare.critical_difference(avg, alpha=alpha, step=last)
        lines.append(f"Final step ({last}) alone, {fin.n_rows} tasks: {_cd_sentence(fin)}")
    except ConfigError as err:
        lines.append(f"Final step ({last}) alone: no test. {err}")
    return [*lines, ""]


def build_report(
    results: pd.DataFrame,
    out_dir: Path | str,
    histories: Mapping[str, pd.DataFrame] | None = None,
    title: str = "Method comparison",
    alpha: float = 0.05,
    features: Features | None = None,
    above: float | None = None,
) -> Path:
    """Write the comparison figures and ``report.md`` into ``out_dir``.

    Files: ``normalised.png``, ``ranks.png``, ``critical_difference.png`` (when autorank can draw
    one; otherwise the report says why), ``intervals.png`` and ``improvement.png`` (IQM, mean and
    P(X > Y) with bootstrap intervals of the final step's scores; ``*_anytime.png`` the same for
    the anytime scores: `metapbt.analysis.interval_report`),
    ``curves/<task>.png``, ``schedules/<name>.png`` for each
    history, and ``report.md`` (written atomically) linking them with relative paths.

    Args:
        results: Long table with the columns ``task, method, seed, step, best``.
        out_dir: Output folder, created if needed.
        histories: Run histories to draw schedules of, by display name; every column that is not
            ``step, member, reward, clone_source`` is drawn as a hyperparameter.
        title: The report's heading.
        alpha: Significance level of the critical-difference test.
        features: Each task's environment and context features
            (`metapbt.envs.contexts.task_features`); with them, the contexts section
            appears for environments studied on several contexts that differ in one feature
            (`metapbt.analysis.context_maps`). ``None``: no contexts section.
        above: The return the contexts section counts contexts above, over time (``None``:
            heat maps only).

    Returns:
        The path of ``report.md``.
    """
    for name, history in (histories or {}).items():
        _hyperparameter_names(name, history)  # fail before drawing anything
    out = Path(out_dir)
    (out / "curves").mkdir(parents=True, exist_ok=True)
    avg = compare.seed_average(results)
    rank_df = compare.ranks(avg)
    ar = compare.average_ranks(rank_df)
    _draw_overview(compare.normalised_scores(avg), rank_df, ar, out, title)
    lines = _overview_markdown(results, avg, ar, title)
    lines += _cd_markdown(avg, out, alpha)
    lines += interval_section(results, out)
    if features:
        lines += context_section(avg, list(ar.order), out, features, above)
    lines += [
        "## Final step",
        "",
        "Mean ± SEM over seeds of the best member's return at each task's last step. "
        "**Bold**: strictly highest mean; †: its mean − SEM is above every other method's "
        f"mean + SEM. The `{compare.MEAN_ROW}` row averages raw returns over tasks.",
        "",
        _final_markdown(compare.final_table(results)),
        "",
        "## Learning curves",
        "",
    ]
    for task, stem in _unique_names(sorted(avg["task"].unique())).items():
        plot_task_curves(avg, task, out / "curves" / f"{stem}.png", colours(list(ar.order)))
        lines += [f"![{task}](curves/{stem}.png)", ""]
    if histories:
        lines += _schedules(histories, out)
    path = out / "report.md"
    write_atomic(path, lambda tmp: tmp.write_text("\n".join(lines), encoding="utf-8"))
    logger.info("Wrote %s", path)
    return path


def _draw_overview(
    norm: pd.DataFrame, rank_df: pd.DataFrame, ar: compare.AverageRanks, out: Path, title: str
) -> None:
    order = list(ar.order)
    plot_over_tasks(
        compare.summarise_over_tasks(norm, "normalised"),
        order,
        "normalised score (mean ± SE over tasks)",
        out / "normalised.png",
        title,
        colour=colours(order),
    )
    labels = {m: f"{m} ({ar.overall[m]:.2f})" for m in order}  # legend: average rank
    plot_over_tasks(
        compare.summarise_over_tasks(rank_df.assign(method=rank_df["method"].map(labels)), "rank"),
        [labels[m] for m in order],
        "mean rank over tasks (1 = best)",
        out / "ranks.png",
        title,
        invert=True,
        colour={labels[m]: c for m, c in colours(order).items()},
    )


def _overview_markdown(
    results: pd.DataFrame, avg: pd.DataFrame, ar: compare.AverageRanks, title: str
) -> list[str]:
    return [
        f"# {title}",
        "",
        f"{avg['task'].nunique()} tasks, {avg['method'].nunique()} methods, "
        f"{results['seed'].nunique()} seeds, {avg['step'].nunique()} steps "
        f"(last: {int(avg['step'].max())}).",
        "",
        *_dropped_note(avg),
        "## Normalised score",
        "",
        "Per step and task, (x − min)/(max − min + 1e-8) across methods of the seed-averaged "
        "best member's return; mean ± SE over tasks.",
        "",
        "![normalised score](normalised.png)",
        "",
        "## Ranks",
        "",
        "Rank 1 is the best; ties share the average rank. Legend and table: best average rank "
        "over all steps first, the final-step rank breaking ties.",
        "",
        "![ranks](ranks.png)",
        "",
        _rank_markdown(ar),
        "",
    ]


def _hyperparameter_names(name: str, history: pd.DataFrame) -> list[str]:
    missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
    if missing:
        raise ConfigError(
            f"history {name!r} lacks the columns {missing}; expected "
            f"{list(HISTORY_COLUMNS)} plus one column per hyperparameter."
        )
    return [c for c in history.columns if c not in HISTORY_COLUMNS]


def _schedules(histories: Mapping[str, pd.DataFrame], out: Path) -> list[str]:
    (out / "schedules").mkdir(parents=True, exist_ok=True)
    lines = ["## Hyperparameter schedules", ""]
    for name, stem in _unique_names(list(histories)).items():
        history = histories[name]
        names = _hyperparameter_names(name, history)
        path = out / "schedules" / f"{stem}.png"
        write_atomic(path, functools.partial(plot_run, history, names, title=name))
        lines += [f"![{name}](schedules/{stem}.png)", ""]
    return lines

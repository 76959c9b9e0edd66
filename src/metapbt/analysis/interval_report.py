"""The report's section on aggregate scores with confidence intervals (IQM, P(X > Y))."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from metapbt.analysis import intervals
from metapbt.analysis.render import colours, fmt, md_table, pyplot, save_png
from metapbt.errors import ConfigError

FIGURE = "intervals.png"
IMPROVEMENT_FIGURE = "improvement.png"
ANYTIME = "_anytime"
"""Suffix of the anytime aggregate's figures (``intervals_anytime.png``, ...)."""


def interval_section(
    results: pd.DataFrame, out_dir: Path, reps: int = 2000, seed: int = 0
) -> list[str]:
    """Markdown lines of the section, after drawing its figures into ``out_dir``.

    Two aggregates: the final step's returns, and the anytime score (each run's curve
    averaged over every sync point). When the results cannot support an estimate (no task
    with every method, unequal seeds), the section says why and no figure is drawn.
    """
    lines = ["## Aggregate scores with 95 % confidence intervals", ""]
    for suffix in ("", ANYTIME):
        for name in (FIGURE, IMPROVEMENT_FIGURE):
            _figure(out_dir, name, suffix).unlink(missing_ok=True)  # never keep an old one
    try:
        final = intervals.final_scores(results)
        anytime = intervals.anytime_scores(results)
    except ConfigError as err:
        return [*lines, f"No estimate: {err}", ""]
    runs, tasks = next(iter(final.values())).shape
    lines += [
        f"Returns of {runs} seeds x {tasks} tasks per method, each task min-max normalised over "
        "every run of every method (0: the task's worst run, 1: its best; a diverged run counts "
        "0). Interquartile mean (IQM) and mean with stratified-bootstrap 95 % percentile "
        f"intervals ({reps} replicates, runs resampled within each task), and the probability of "
        "improvement P(X > Y) that a run of X beats a run of Y on a random task (Agarwal et al., "
        "NeurIPS 2021; `metapbt.analysis.intervals`). Two scores per run: its best member's "
        "return at the final step, and its anytime score, that return averaged over every sync "
        "point (the height of its learning curve: where most runs end level, as on a task every "
        "method solves, the anytime score still tells a method that gets there sooner).",
        "",
    ]
    for title, label, scores, suffix in (
        ("Final step", "normalised final score", final, ""),
        ("Anytime (averaged over every sync point)", "normalised anytime score", anytime, ANYTIME),
    ):
        lines += _aggregate(title, label, scores, out_dir, suffix, reps, seed)
    return lines


def _figure(out_dir: Path, name: str, suffix: str) -> Path:
    stem, ext = name.rsplit(".", 1)
    return out_dir / f"{stem}{suffix}.{ext}"


def _aggregate(
    title: str,
    label: str,
    scores: dict[str, np.ndarray],
    out_dir: Path,
    suffix: str,
    reps: int,
    seed: int,
) -> list[str]:
    table = intervals.interval_table(scores, reps, seed)
    pairs = intervals.improvement_table(scores, reps, seed)
    order = list(table["method"])
    figure = _figure(out_dir, FIGURE, suffix)
    improvement = _figure(out_dir, IMPROVEMENT_FIGURE, suffix)
    _draw_intervals(table, figure, label)
    _draw_improvement(pairs, order, improvement)
    return [
        f"### {title}",
        "",
        f"![IQM and mean]({figure.name})",
        "",
        md_table(
            ["method", "IQM", "95 % CI", "mean", "95 % CI"],
            [
                [
                    str(r.method),
                    fmt(r.iqm, 3),
                    f"[{fmt(r.iqm_low, 3)}, {fmt(r.iqm_high, 3)}]",
                    fmt(r.mean, 3),
                    f"[{fmt(r.mean_low, 3)}, {fmt(r.mean_high, 3)}]",
                ]
                for r in table.itertuples()
            ],
        ),
        "",
        "P(row > column) with its 95 % interval; an interval wholly above 0.5 means the row "
        "method is better on a random task with statistical confidence.",
        "",
        f"![probability of improvement]({improvement.name})",
        "",
        _improvement_markdown(pairs, order),
        "",
    ]


def _improvement_markdown(pairs: pd.DataFrame, order: list[str]) -> str:
    index = pairs.set_index(["x", "y"])
    rows = []
    for x in order:
        cells = [x]
        for y in order:
            if x == y:
                cells.append("")
                continue
            r = index.loc[(x, y)]
            text = f"{r['p']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"
            cells.append(f"**{text}**" if r["low"] > 0.5 else text)
        rows.append(cells)
    return md_table(["P(row > column)", *order], rows)


def _draw_intervals(table: pd.DataFrame, path: Path, label: str) -> None:
    plt = pyplot()
    methods = list(table["method"])[::-1]  # best at the top
    colour = colours(methods)
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.45 * len(methods) + 1.2), sharey=True)
    rows = table.set_index("method").loc[methods]
    for ax, name in zip(axes, ("iqm", "mean"), strict=True):
        for y, method in enumerate(methods):
            r = rows.loc[method]
            ax.plot(
                [r[f"{name}_low"], r[f"{name}_high"]],
                [y, y],
                lw=6,
                alpha=0.5,
                color=colour[method],
                solid_capstyle="butt",
            )
            ax.plot([r[name]], [y], "|", ms=14, mew=2, color="black")
        ax.set_title(name.upper() if name == "iqm" else "Mean")
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(methods)), methods)
    fig.tight_layout()
    save_png(fig, path)


def _draw_improvement(pairs: pd.DataFrame, order: list[str], path: Path) -> None:
    plt = pyplot()
    matrix = np.full((len(order), len(order)), np.nan)
    index = pairs.set_index(["x", "y"])["p"]
    for i, x in enumerate(order):
        for j, y in enumerate(order):
            if x != y:
                matrix[i, j] = index.loc[(x, y)]
    size = 0.6 * len(order) + 2
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(matrix, cmap="RdBu", vmin=0, vmax=1)
    for i in range(len(order)):
        for j in range(len(order)):
            if i != j:
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(order)), order, rotation=45, ha="right")
    ax.set_yticks(range(len(order)), order)
    ax.set_title("P(row > column)")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    save_png(fig, path)

"""metaPBT's picture of a study over a grid of contexts: heat maps and the share above a level.

For an environment studied on several contexts that differ in one feature (LunarLander's leg
height, CartPole's pole length), one heat map per method: contexts on the x-axis (ordered by the
feature's value), environment steps on the y-axis, coloured by the seed-averaged best member's
return, every panel on one colour scale; and one curve per method of the fraction of contexts
whose seed-averaged best return is above a level (0 for LunarLander: "turns positive").
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from metapbt.analysis.render import colours, pyplot, save_png

_STEP_LABEL = "environment steps per member"
_PANELS_PER_ROW = 3
_STEP_TICKS = 16


Features = Mapping[str, tuple[str, Mapping[str, float]]]
"""Per task id: its environment and its context's ``name=value`` features (empty for a
named context such as a planet); `metapbt.envs.contexts.task_features` parses them."""


def context_axes(features: Features) -> dict[str, tuple[str, dict[str, float]]]:
    """Per environment with at least two tasks: its varying feature and each task's value.

    The feature is the one whose value differs between the env's tasks; an env whose tasks
    differ in no single feature (planets, or several features at once) is left out.
    """
    by_env: dict[str, dict[str, Mapping[str, float]]] = {}
    for task, (env, values) in features.items():
        if values:
            by_env.setdefault(env, {})[task] = values
    axes = {}
    for env, contexts in by_env.items():
        if len(contexts) < 2:
            continue
        keys = {k for c in contexts.values() for k in c}
        varying = [k for k in sorted(keys) if len({c.get(k) for c in contexts.values()}) > 1]
        if len(varying) == 1 and all(varying[0] in c for c in contexts.values()):
            feature = varying[0]
            axes[env] = (feature, {t: c[feature] for t, c in contexts.items()})
    return axes


def context_grid(avg: pd.DataFrame, values: dict[str, float], method: str) -> pd.DataFrame:
    """Step x context-value table of ``method``'s seed-averaged scores (columns sorted)."""
    rows = avg[(avg["method"] == method) & avg["task"].isin(values)]
    table = rows.assign(value=rows["task"].map(values)).pivot_table(
        index="step", columns="value", values="score", aggfunc="first"
    )
    return table.reindex(columns=sorted(set(values.values())))


def fraction_above(avg: pd.DataFrame, values: dict[str, float], level: float) -> pd.DataFrame:
    """Per method and step, the fraction of the contexts whose seed-averaged score > ``level``.

    A context with no score at a step (not run yet) is left out of that step's fraction.

    Returns:
        Columns ``method, step, fraction, contexts``.
    """
    rows = avg[avg["task"].isin(values) & avg["score"].notna()]
    grouped = rows.groupby(["method", "step"])["score"]
    out = grouped.agg(fraction=lambda s: float((s > level).mean()), contexts="count").reset_index()
    return out


def plot_heatmaps(
    avg: pd.DataFrame, values: dict[str, float], feature: str, order: list[str], path: Path
) -> None:
    """One panel per method (``order``), one shared colour scale; writes a PNG."""
    plt = pyplot()
    grids = {m: context_grid(avg, values, m) for m in order}
    finite = np.concatenate([g.to_numpy().ravel() for g in grids.values()])
    finite = finite[np.isfinite(finite)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    # a few panels to a row, so the figure reads at a page's width (about 700 px); more
    # methods add rows
    columns = min(_PANELS_PER_ROW, len(order))
    rows = -(-len(order) // columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(2.1 * columns + 1.2, 2.7 * rows + 0.3),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    image = None
    for k, (ax, method) in enumerate(zip(axes.ravel(), order, strict=False)):
        grid = grids[method]
        image = ax.imshow(
            grid.to_numpy(dtype=float),
            aspect="auto",
            origin="lower",
            cmap="viridis",
            vmin=low,
            vmax=high,
            interpolation="nearest",
        )
        ax.set_title(method, fontsize=11)
        ax.set_xticks(range(grid.shape[1]), [f"{v:g}" for v in grid.columns], fontsize=9)
        every = -(-grid.shape[0] // _STEP_TICKS)  # at most that many labels: they stay apart
        ax.set_yticks(
            range(0, grid.shape[0], every), [_steps(s) for s in grid.index[::every]], fontsize=9
        )
        if k + columns >= len(order):  # nothing below it
            ax.set_xlabel(feature, fontsize=10)
        if k % columns == 0:
            ax.set_ylabel(_STEP_LABEL, fontsize=10)
    for ax in axes.ravel()[len(order) :]:
        ax.remove()
    if image is not None:
        bar = fig.colorbar(image, ax=axes.ravel()[: len(order)].tolist(), shrink=0.8)
        bar.set_label("best return (mean over seeds)", fontsize=10)
    save_png(fig, path)


def _steps(step: float) -> str:
    """``520k``, ``1.2M``: a step count short enough for a tick label."""
    return f"{step / 1e6:.3g}M" if step >= 1e6 else f"{step / 1e3:.3g}k"


def plot_fraction_above(
    fractions: pd.DataFrame, order: list[str], level: float, path: Path
) -> None:
    """One line per method of the fraction of contexts above ``level``; writes a PNG."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    palette = colours(order)
    for method in order:
        rows = fractions[fractions["method"] == method].sort_values("step")
        ax.plot(
            rows["step"], rows["fraction"], marker="o", ms=3, label=method, color=palette[method]
        )
    ax.set_xlabel(_STEP_LABEL)
    ax.set_ylabel(f"fraction of contexts with best return > {level:g}")
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=8)
    save_png(fig, path)


def first_above(
    avg: pd.DataFrame, values: dict[str, float], level: float, methods: list[str]
) -> pd.DataFrame:
    """The first step whose seed-averaged score is above ``level``.

    Returns:
        Context values (rows, sorted) x ``methods`` (columns); NaN: never, within the steps run.
    """
    rows = avg[avg["task"].isin(values) & avg["method"].isin(methods)]
    rows = rows.assign(value=rows["task"].map(values))
    above = rows[rows["score"] > level]
    first = above.groupby(["value", "method"])["step"].min().unstack("method")
    index = sorted(set(values.values()))
    return first.reindex(index=index, columns=methods)


def first_above_table(table: pd.DataFrame, feature: str) -> list[str]:
    """`first_above` as Markdown (steps in thousands; "—": never; bold: the earliest)."""
    lines = [
        f"| {feature} | " + " | ".join(table.columns) + " |",
        "|---" * (len(table.columns) + 1) + "|",
    ]
    for value, row in table.iterrows():
        earliest = row.min()
        cells = [
            "—"
            if np.isnan(v)
            else (f"**{v / 1000:.0f}k**" if v == earliest else f"{v / 1000:.0f}k")
            for v in row
        ]
        lines.append(f"| {value:g} | " + " | ".join(cells) + " |")
    return lines


def context_section(
    avg: pd.DataFrame, order: list[str], out: Path, features: Features, level: float | None
) -> list[str]:
    """The report's Markdown and figures for every environment studied over a context grid.

    Args:
        avg: `metapbt.analysis.compare.seed_average` output.
        order: Methods in legend order.
        out: Report folder (figures go to ``contexts/``).
        features: Each task's environment and context features (`Features`).
        level: The return the fraction curve counts contexts above (``None``: no curve).
    """
    tasks = set(avg["task"].unique())
    axes = context_axes({t: f for t, f in features.items() if t in tasks})
    if not axes:
        return []
    (out / "contexts").mkdir(parents=True, exist_ok=True)
    lines = [
        "## Contexts",
        "",
        "Per method, the seed-averaged best member's return for every context (x) and "
        "environment step (y), on one colour scale per environment"
        + (
            f"; below it, the fraction of contexts whose score is above {level:g}."
            if level is not None
            else "."
        ),
        "",
    ]
    for env, (feature, values) in sorted(axes.items()):
        plot_heatmaps(avg, values, feature, order, out / "contexts" / f"{env}_heatmap.png")
        lines += [f"### {env} ({feature})", "", f"![{env}](contexts/{env}_heatmap.png)", ""]
        if level is not None:
            fractions = fraction_above(avg, values, level)
            plot_fraction_above(fractions, order, level, out / "contexts" / f"{env}_above.png")
            lines += [f"![{env} above {level:g}](contexts/{env}_above.png)", ""]
            lines += [
                f"The first sync point at which each method's seed-averaged best return is above "
                f"{level:g}, per {feature} (bold: the earliest; —: never):",
                "",
                *first_above_table(first_above(avg, values, level, order), feature),
                "",
            ]
    return lines

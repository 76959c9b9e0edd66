"""The figure of one run: best reward over time and each member's hyperparameter schedules."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def plot_run(history: pd.DataFrame, names: list[str], path: Path, title: str = "") -> None:
    """Write a PNG: best and per-member reward, then one schedule panel per hyperparameter.

    Args:
        history: A run's history table (``metapbt.history/1`` columns).
        names: The hyperparameter columns to plot.
        path: Output PNG path.
        title: Figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1 + len(names), 1, figsize=(7, 2.4 * (1 + len(names))), sharex=True)
    ax = axes[0]
    for member, rows in history.groupby("member"):
        ax.plot(rows["step"], rows["reward"], lw=0.8, alpha=0.6, label=f"member {member}")
    best = history.groupby("step")["reward"].max()
    ax.plot(best.index, best.values, "k-", lw=2, label="best")
    ax.set_ylabel("reward")
    ax.legend(fontsize=7, ncol=3)
    for ax, name in zip(axes[1:], names, strict=True):
        for member, rows in history.groupby("member"):
            ax.step(rows["step"], rows[name], where="pre", lw=1, label=f"member {member}")
        clones = history[history["clone_source"] >= 0]
        ax.set_ylabel(name)
        if name == "lr":
            ax.set_yscale("log")
        for step in clones["step"].unique():
            ax.axvline(step, color="grey", lw=0.3, alpha=0.5)
    axes[-1].set_xlabel("environment steps per member")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

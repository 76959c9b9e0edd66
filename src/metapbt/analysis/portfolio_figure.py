"""The portfolio heat map: a normalised matrix of candidates x tasks, the chosen rows marked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def plot_portfolio(
    normalised: np.ndarray,
    tasks: Sequence[str],
    candidates: Sequence[str],
    picks: Sequence[int],
    path: Path,
    title: str = "",
) -> None:
    """Write a PNG heat map of the matrix a selection saw, with its picks numbered.

    Args:
        normalised: ``[candidates, tasks]`` scores in [0, 1] (normalised by the caller).
        tasks: Column labels.
        candidates: Row labels.
        picks: Chosen row indices, in selection order (numbered ``#1``, ``#2``...).
        path: Output PNG path.
        title: Figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(candidates)
    fig, ax = plt.subplots(figsize=(2.5 + 0.9 * len(tasks), 2.0 + 0.3 * rows))
    image = ax.imshow(np.asarray(normalised), aspect="auto", cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="normalised score")
    ax.set_xticks(np.arange(len(tasks)), list(tasks), rotation=45, ha="right")
    ax.set_yticks(np.arange(rows), list(candidates), fontsize=7)
    for order, row in enumerate(picks, start=1):
        ax.text(
            -0.45,
            row,
            f"#{order}",
            color="red",
            va="center",
            weight="bold",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
        )
        ax.axhline(row, color="red", lw=0.6, alpha=0.6)
    ax.set_title(title)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)

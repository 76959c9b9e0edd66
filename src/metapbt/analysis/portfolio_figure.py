"""The portfolio heat map: normalised matrix of candidates x tasks, chosen entries marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metapbt.population.portfolio import Portfolio, normalise_columns


def plot_portfolio(portfolio: Portfolio, path: Path) -> None:
    """Write a PNG heat map of the matrix the selection saw, with its picks numbered."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = portfolio.matrix
    normalised = normalise_columns(matrix.scores)
    rows = len(matrix.candidates)
    fig, ax = plt.subplots(figsize=(2.5 + 0.9 * len(matrix.tasks), 2.0 + 0.3 * rows))
    image = ax.imshow(normalised, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="normalised score")
    ax.set_xticks(np.arange(len(matrix.tasks)), matrix.tasks, rotation=45, ha="right")
    labels = [
        f"{c.source} · " + ", ".join(f"{k}={v:.2g}" for k, v in c.config.items())
        for c in matrix.candidates
    ]
    ax.set_yticks(np.arange(rows), labels, fontsize=7)
    for order, entry in enumerate(portfolio.entries, start=1):
        row = matrix.candidates.index(entry)
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
    target = f", target {portfolio.target} left out" if portfolio.target else ""
    ax.set_title(f"portfolio of {len(portfolio.entries)} (red: selection order{target})")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)

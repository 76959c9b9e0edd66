"""Shared rendering helpers of the analysis reports: pyplot, atomic PNGs, Markdown tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from metapbt._atomic import write_atomic


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: Path) -> None:
    """Write ``fig`` to ``path`` atomically and close it."""
    plt = pyplot()
    try:
        write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    finally:
        plt.close(fig)


def colours(methods: list[str]) -> dict[str, str]:
    """One colour per method, the same in every figure (methods sorted by name)."""
    return {m: f"C{i % 10}" for i, m in enumerate(sorted(methods))}


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (pipes in cells escaped)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        "| " + " | ".join(cell(h) for h in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(x: float, digits: int = 2) -> str:
    """``x`` to ``digits`` decimals; an em dash for missing or non-finite values."""
    return "—" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"

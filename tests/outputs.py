"""What a test reads back from disk: a directory's file tree, and every run's outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def tree(root: Path) -> list[str]:
    """Every path under ``root``, relative and sorted (to assert that nothing was written)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def run_outputs(root: Path) -> dict[str, tuple[dict, pd.DataFrame]]:
    """Every run directory under ``root`` (by relative path): its summary without wall times
    and versions, and its history."""
    found = {}
    for summary in sorted(root.rglob("summary.json")):
        data = json.loads(summary.read_text())
        for key in ("wall_seconds", "versions"):
            data.pop(key, None)
        history = pd.read_parquet(summary.parent / "history.parquet")
        found[str(summary.parent.relative_to(root))] = (data, history)
    return found

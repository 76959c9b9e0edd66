"""Collect a study's finished cells into the tables the analysis reads."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from metapbt.errors import ConfigError
from metapbt.population.history import History
from metapbt.studies.config import Study
from metapbt.studies.states import cell_dir, cell_state

logger = logging.getLogger(__name__)


def load_results(study: Study, seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """One row per (task, method, seed, step) of every done cell: the best member's return.

    Columns ``task, method, seed, step, best, seconds`` (``seconds``: the cell's wall time).
    ``seeds``: only the cells of these seeds (default: every seed).

    Raises:
        ConfigError: If no cell is done yet.
    """
    rows = []
    skipped = 0
    cells = [c for c in study.cells if seeds is None or c.seed in seeds]
    for cell in cells:
        if cell_state(study, cell) != "done":
            skipped += 1
            continue
        summary = json.loads((cell_dir(study, cell) / "summary.json").read_text())
        for record in summary["best_per_round"]:
            rows.append(
                {
                    "task": cell.task,
                    "method": cell.method.label,
                    "seed": cell.seed,
                    "step": int(record["step"]),
                    "best": float("nan") if record["best"] is None else float(record["best"]),
                    "seconds": float(summary["wall_seconds"]),
                }
            )
    if not rows:
        raise ConfigError(f"no finished cells in {study.results_dir}; run the study first")
    if skipped:
        logger.warning("%d of %d cells are not done and are left out", skipped, len(cells))
    return pd.DataFrame(rows)


def load_histories(study: Study, ids: Sequence[str]) -> dict[str, pd.DataFrame]:
    """The ``history.parquet`` of the named cells (by cell id).

    Raises:
        ConfigError: For an unknown or unfinished cell id.
    """
    cells = {c.id: c for c in study.cells}
    found = {}
    for cell_id in ids:
        if cell_id not in cells:
            raise ConfigError(f"no cell {cell_id!r} in study {study.name!r} (metapbt study list)")
        if cell_state(study, cells[cell_id]) != "done":
            raise ConfigError(f"cell {cell_id!r} is not done yet")
        path: Path = cell_dir(study, cells[cell_id]) / "history.parquet"
        found[cell_id] = History.from_parquet(path).to_frame()
    return found


def default_schedules(study: Study, seeds: Sequence[int] | None = None) -> list[str]:
    """Cells whose schedules the report shows by default: each method's first done cell.

    ``seeds``: only cells of these seeds (default: any).
    """
    first: dict[str, str] = {}
    for cell in study.cells:
        if (seeds is None or cell.seed in seeds) and cell_state(study, cell) == "done":
            first.setdefault(cell.method.label, cell.id)
    return list(first.values())

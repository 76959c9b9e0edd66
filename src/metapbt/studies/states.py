"""A study cell's state, read from the files in its directory (the study keeps no state).

* ``done``: ``summary.json`` exists and records the cell's settings (file paths compared as the
  study file names them, so a study reads the same from any working directory or clone; a
  setting an older summary lacks counts as its [`LEGACY`][metapbt.runs.config.LEGACY] value);
* ``stale``: ``summary.json`` records other settings (the study file changed): never overwritten;
* ``failed``: ``error.json`` holds the error and traceback of the last attempt;
* ``partial``: a checkpoint but no summary (killed midway): resumed from the checkpoint;
* ``pending``: nothing yet.

A cell a runner is working on also holds that runner's claim (`metapbt.studies.claims`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from metapbt.runs.config import with_legacy
from metapbt.runs.outputs import CHECKPOINT
from metapbt.studies.config import Cell, Study

STATES = ("done", "partial", "failed", "pending", "stale")


def cell_dir(study: Study, cell: Cell) -> Path:
    """The cell's results directory."""
    return study.results_dir / study.cell_name(cell)


def cell_state(study: Study, cell: Cell) -> str:
    """One of `STATES` (see the module docstring)."""
    out = cell_dir(study, cell)
    summary = out / "summary.json"
    if summary.exists():
        try:
            recorded = json.loads(summary.read_text())
        except json.JSONDecodeError:
            return "failed"
        expected = cell.run_config().model_dump(mode="json")
        recorded = with_legacy(recorded)
        same = all(_same_setting(k, recorded.get(k), v, study.base) for k, v in expected.items())
        return "done" if same else "stale"
    if (out / "error.json").exists():
        return "failed"
    return "partial" if (out / CHECKPOINT).exists() else "pending"


PATH_SETTINGS = ("metadata", "save_meta", "portfolio")
"""Run settings that name files; the study writes them relative to the study file's folder."""


def _tail(path: str) -> tuple[str, ...]:
    """The normalised components of ``path`` without its leading ``..``."""
    parts = Path(os.path.normpath(path)).parts
    return tuple(p for p in parts if p != "..")


def _same_setting(key: str, recorded: Any, expected: Any, base: Path) -> bool:
    """Whether a recorded run setting is the one the study now asks for.

    A relative path in the study file reaches the run config as ``<folder of the study file as
    it was loaded>/<path>``: ``studies/pf/x.json`` when run from the repository root,
    ``/home/me/repo/studies/pf/x.json`` when loaded by absolute path or from elsewhere. Such a
    setting matches when the recorded path ends with the path the study file names (as
    normalised), so results are found again from any working directory or clone location.
    """
    if key not in PATH_SETTINGS or not (isinstance(recorded, str) and isinstance(expected, str)):
        return recorded == expected
    if os.path.normpath(recorded) == os.path.normpath(expected):
        return True
    try:
        named = os.path.relpath(expected, base)
    except ValueError:  # another drive (Windows)
        return False
    tail, have = _tail(named), _tail(recorded)
    return len(have) >= len(tail) > 0 and have[-len(tail) :] == tail


def states(study: Study) -> dict[str, str]:
    """Cell id -> state, in grid order."""
    return {cell.id: cell_state(study, cell) for cell in study.cells}

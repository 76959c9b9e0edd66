"""What a test reads back from disk: a directory's file tree, and every run's outputs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from metapbt.runs.config import RunConfig


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


def finished_summary(config: RunConfig, bests: Sequence[float]) -> dict[str, Any]:
    """The ``summary.json`` record a run of ``config`` writes when it finishes with ``bests`` (one
    per round), made by the library's own writer: stand-ins for ``run_batch`` write the real format,
    so a format change reaches the tests that read it."""
    from metapbt.engine import agents
    from metapbt.runs import outputs
    from metapbt.runs.checkpoint import Checkpoint

    kind = agents.kind(config.agent)
    agent_config = kind.for_space(kind.preset(config.preset, env=config.env), config.search_space)
    records = tuple(
        {"step": config.interval * (i + 1), "best": float(b)} for i, b in enumerate(bests)
    )
    checkpoint = Checkpoint(config.model_dump(mode="json"), None, None, {}, records, 0.1)
    return outputs.summary(config, config.context_values, agent_config, checkpoint, {})


def write_finished(out: Path, config: RunConfig, bests: Sequence[float]) -> dict[str, Any]:
    """Write :func:`finished_summary` where the run's files go (``out/summary.json``); return it."""
    from metapbt._atomic import write_text_atomic
    from metapbt.runs.outputs import RunOutputs

    record = finished_summary(config, bests)
    write_text_atomic(RunOutputs(Path(out)).summary, json.dumps(record, indent=2))
    return record

"""Turning a run's history into meta-data rows and storing them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from metapbt.metadata.store import MetaStore
from metapbt.population.history import History


def meta_rows(history: History) -> pd.DataFrame:
    """All PB2 training rows of a history (uncapped), in the meta-data column layout."""
    data = history.surrogate_data(max_rows=len(history) + 1)
    frame = pd.DataFrame(
        {
            "time": data.time,
            "reward_before": data.reward_before,
            "target": data.target,
            "member": data.member,
        }
    )
    for i, name in enumerate(history.space.names):
        frame[name] = data.hparams[:, i] if len(data) else []
    return frame


def save_run(
    store: str | Path,
    history: History,
    *,
    task: str,
    seed: int,
    method: str,
    env: str,
    context: Mapping[str, float],
    protocol: Mapping[str, Any] | None = None,
) -> Path:
    """Append a finished run to the meta-data directory ``store``; returns the file.

    ``protocol`` records the settings the run was trained under (its provenance).
    """
    return MetaStore(store).write(
        task,
        meta_rows(history),
        space=history.space.to_dict(),
        hp_names=history.space.names,
        seed=seed,
        method=method,
        env=env,
        context=context,
        protocol=protocol,
    )

"""A directory of previous runs ("meta-data"), in the documented format ``metapbt.metadata/1``.

Layout: ``<root>/<task id with spaces as '__'>/<method>-seed<seed>.parquet``. Each file holds the
PB2 training rows of one run:

| column          | dtype   | meaning |
| --------------- | ------- | ------- |
| `time`          | float64 | step at the end of the interval |
| `reward_before` | float64 | reward at the start of the interval (the donor's after a clone) |
| `<hp name>`     | float64 | one column per hyperparameter (search-space order) |
| `target`        | float64 | reward change per step over the interval |
| `member`        | int64   | member index |

and, as file metadata, the schema version, the task id (``"<env> <context>"``), the env, the
context values, the search space, the seed, the method, the protocol the run was trained under
(``preset``, ``population``, ``budget``, ``interval``; absent in files written before it was
recorded) and the package versions. Files are written atomically. Readers check the schema and
that the stored search space equals the run's.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metapbt._atomic import write_atomic
from metapbt._paths import plain_name
from metapbt._slug import found_or_new, task_slug
from metapbt.errors import ConfigError, MetaDataError

SCHEMA = "metapbt.metadata/1"
BASE_COLUMNS = ("time", "reward_before", "target", "member")


@dataclass(frozen=True)
class MetaRun:
    """One stored run (rows as a DataFrame with the documented columns)."""

    task: str
    seed: int
    method: str
    context: Mapping[str, float]
    rows: pd.DataFrame = field(repr=False)
    path: Path | None = None
    env: str = ""
    protocol: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class MetaTask:
    """All stored runs of one task, pooled: ``[n]`` arrays sorted by time.

    Attributes:
        task: Task id.
        time: ``[n]`` interval end steps.
        reward_before: ``[n]`` rewards at interval start.
        hparams: ``[n, d]`` raw hyperparameters.
        target: ``[n]`` reward change per step.
        seeds: Seeds of the pooled runs.
        protocols: The protocol each pooled run recorded (``None`` where it recorded none),
            by file.
    """

    task: str
    time: np.ndarray
    reward_before: np.ndarray
    hparams: np.ndarray
    target: np.ndarray
    seeds: tuple[int, ...]
    protocols: Mapping[Path, Mapping[str, Any] | None] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.time.shape[0])


class MetaStore:
    """Read and write a meta-data directory.

    Args:
        root: The directory (created on the first write).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def write(
        self,
        task: str,
        rows: pd.DataFrame,
        *,
        space: Mapping[str, Any],
        hp_names: Sequence[str],
        seed: int,
        method: str,
        env: str,
        context: Mapping[str, float],
        protocol: Mapping[str, Any] | None = None,
    ) -> Path:
        """Store one run's PB2 rows atomically; returns the file path.

        ``protocol`` (``preset``, ``population``, ``budget``, ``interval``) is the provenance
        runs that later read the file are checked against.
        """
        import jax
        import pyarrow as pa
        import pyarrow.parquet as pq

        missing = [c for c in (*BASE_COLUMNS, *hp_names) if c not in rows.columns]
        if missing:
            raise ConfigError(f"meta-data rows lack columns {missing}")
        frame = rows[["time", "reward_before", *hp_names, "target", "member"]].copy()
        meta = {
            "schema": SCHEMA,
            "task": task,
            "env": env,
            "context": dict(context),
            "space": dict(space),
            "seed": int(seed),
            "method": method,
            "protocol": None if protocol is None else dict(protocol),
            "versions": {"jax": jax.__version__, "python": platform.python_version()},
        }
        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.replace_schema_metadata({b"metapbt": json.dumps(meta).encode()})
        return write_atomic(
            self.path_for(task, method, seed), lambda tmp: pq.write_table(table, tmp)
        )

    def path_for(self, task: str, method: str, seed: int) -> Path:
        """Where the run ``(task, method, seed)`` is (or would be) stored.

        ``<task_slug>/<method>-seed<k>.parquet``; a run stored before the slug replaced commas
        (``cart_pole__gravity=12.0,length=0.4/``) is found where it is.
        """
        name = f"{plain_name(method, 'method')}-seed{int(seed)}.parquet"
        return found_or_new(
            self.root / task_slug(task) / name, self.root / task.replace(" ", "__") / name
        )

    def read(self, path: Path) -> tuple[MetaRun, dict[str, Any]]:
        """Read one file.

        Raises:
            MetaDataError: Naming the file, if it is broken.
        """
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
            meta = json.loads((table.schema.metadata or {})[b"metapbt"])
        except (OSError, ValueError, KeyError) as err:
            raise MetaDataError(
                f"meta-data file {path} is corrupted or not written by metapbt "
                f"({type(err).__name__}: {err}); delete or rebuild it"
            ) from None
        if not isinstance(meta, dict) or meta.get("schema") != SCHEMA:
            found = meta.get("schema") if isinstance(meta, dict) else type(meta).__name__
            raise MetaDataError(f"{path} has schema {found!r}, expected {SCHEMA!r}")
        try:
            if not isinstance(meta.get("protocol"), dict | None):
                raise TypeError(f"protocol must be a table, got {meta['protocol']!r:.60}")
            run = MetaRun(
                plain_name(meta["task"], "task id"),
                int(meta["seed"]),
                plain_name(meta["method"], "method"),
                dict(meta["context"]),
                table.to_pandas(),
                path,
                env=str(meta.get("env", "")),
                protocol=meta.get("protocol"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise MetaDataError(
                f"meta-data file {path} has malformed provenance ({type(err).__name__}: {err}); "
                "delete or rebuild it"
            ) from None
        return run, meta

    def runs(self) -> list[Path]:
        """All run files, sorted."""
        return sorted(self.root.glob("*/*.parquet")) if self.root.is_dir() else []

    def read_runs(
        self,
        space: Mapping[str, Any],
        exclude: Callable[[str, Mapping[str, float], str], bool] | None = None,
    ) -> list[MetaRun]:
        """Every stored run, in file order, leaving out the runs ``exclude`` matches.

        Args:
            space: The run's search space as a dict (``SearchSpace.to_dict()``); every file's
                must equal it.
            exclude: ``exclude(env, context, task_id)`` is true for runs of the target task
                ([`TaskRef.same_as`][metapbt.metadata.source.TaskRef.same_as]); they are never
                returned, so a target can't learn from itself.

        Raises:
            MetaDataError: On a missing directory, a broken file, or a search-space mismatch.
        """
        files = self.runs()
        if not files:
            raise MetaDataError(
                f"no meta-data runs under {self.root}; build some with `metapbt metadata build`"
            )
        found = []
        for path in files:
            run, meta = self.read(path)
            if meta.get("space") != dict(space):
                raise MetaDataError(
                    f"{path} was recorded with search space {meta.get('space')}, but this run uses "
                    f"{dict(space)}; rebuild the meta-data or use the same space"
                )
            if exclude is None or not exclude(run.env, run.context, run.task):
                found.append(run)
        return found

    def tasks(
        self,
        space: Mapping[str, Any],
        exclude: Callable[[str, Mapping[str, float], str], bool] | None = None,
    ) -> list[MetaTask]:
        """Pool the stored runs per task (`read_runs`, with the same arguments and errors)."""
        return pool_tasks(self.read_runs(space, exclude), list(space))


def pool_tasks(runs: Sequence[MetaRun], names: Sequence[str]) -> list[MetaTask]:
    """The runs pooled per task (sorted by task id), hyperparameter columns ``names``."""
    grouped: dict[str, list[MetaRun]] = {}
    for run in runs:
        grouped.setdefault(run.task, []).append(run)
    return [_pool(task, group, list(names)) for task, group in sorted(grouped.items())]


def _pool(task: str, runs: list[MetaRun], names: list[str]) -> MetaTask:
    frame = pd.concat([r.rows for r in runs], ignore_index=True).sort_values("time", kind="stable")
    return MetaTask(
        task=task,
        time=frame["time"].to_numpy(np.float64),
        reward_before=frame["reward_before"].to_numpy(np.float64),
        hparams=frame[names].to_numpy(np.float64),
        target=frame["target"].to_numpy(np.float64),
        seeds=tuple(sorted(r.seed for r in runs)),
        protocols={r.path: r.protocol for r in runs if r.path is not None},
    )

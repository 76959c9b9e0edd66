"""The history of a population run and its PB2 transformation into surrogate training data.

File format (``metapbt.history/1``), one row per member per sync point:

| column         | dtype   | meaning |
| -------------- | ------- | ------- |
| `step`         | int64   | sync point (environment steps per member at the end of the interval) |
| `member`       | int64   | member index, ``0 .. N-1`` |
| `<hp name>`    | float64 | one column per tuned hyperparameter (search-space order; below) |
| `reward`       | float64 | the member's score at ``step`` (NaN if its evaluation diverged) |
| `clone_source` | int64   | member whose weights it copied at ``step`` (exploit), or -1 (kept) |

A hyperparameter's column holds the values the member trained with during the interval that
ended at ``step`` (a categorical's column holds its choices, of their type).

Parquet files carry the schema version, the search space (JSON) and the run's labels (JSON,
e.g. ``{"agent": "dqn"}``; absent in files written before labels existed) as file metadata.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from metapbt._atomic import write_atomic
from metapbt.errors import ConfigError, MetaPBTError
from metapbt.population.space import Config, SearchSpace

SCHEMA_VERSION = "metapbt.history/1"
RESERVED_COLUMNS = ("step", "member", "reward", "clone_source")
LABELS_KEY = b"metapbt.labels"
NO_SOURCE = -1


@dataclass(frozen=True)
class SurrogateData:
    """PB2 training rows: one per member interval with known start and end reward.

    Shapes: ``n`` rows, ``d`` hyperparameters.

    Attributes:
        time: ``[n]`` step at the end of the interval.
        reward_before: ``[n]`` reward at the start of the interval (the donor's after an exploit).
        hparams: ``[n, d]`` raw hyperparameter values used during the interval.
        target: ``[n]`` reward change per step, ``(R_end - R_before) / (t_end - t_start)``.
        member: ``[n]`` member index of each row.
    """

    time: np.ndarray
    reward_before: np.ndarray
    hparams: np.ndarray
    target: np.ndarray
    member: np.ndarray

    def __len__(self) -> int:
        return int(self.time.shape[0])


class History:
    """Append-only record of a population run (see the module docstring for the schema).

    Args:
        space: The run's search space; its names become the hyperparameter columns.
    """

    def __init__(self, space: SearchSpace) -> None:
        clash = [n for n in space.names if n in RESERVED_COLUMNS]
        if clash:
            raise ConfigError(
                f"hyperparameter names {clash} clash with history columns {RESERVED_COLUMNS}; "
                "rename them"
            )
        self.space = space
        self._step: list[int] = []
        self._member: list[int] = []
        self._hparams: list[list[float]] = []
        self._reward: list[float] = []
        self._source: list[int] = []

    def __len__(self) -> int:
        return len(self._step)

    def add_round(
        self,
        step: int,
        configs: Sequence[Config],
        rewards: Sequence[float] | np.ndarray,
        clone_sources: Sequence[int],
    ) -> None:
        """Append one row per member for the sync point ``step``."""
        self.add_rows(step, range(len(configs)), configs, rewards, clone_sources)

    def add_rows(
        self,
        step: int,
        members: Sequence[int],
        configs: Sequence[Config],
        rewards: Sequence[float] | np.ndarray,
        clone_sources: Sequence[int],
    ) -> None:
        """Append rows of some members at ``step`` (asynchronous populations report alone)."""
        if not len(members) == len(configs) == len(rewards) == len(clone_sources):
            raise ConfigError(
                f"one config, reward and clone source per member expected, got "
                f"{len(configs)}, {len(rewards)}, {len(clone_sources)} for {len(members)}"
            )
        for member, config, reward, source in zip(
            members, configs, rewards, clone_sources, strict=True
        ):
            self._step.append(int(step))
            self._member.append(int(member))
            self._hparams.append(self.space.encode(config))
            self._reward.append(float(reward))
            self._source.append(int(source))

    def to_frame(self) -> pd.DataFrame:
        """The history as a DataFrame with the documented columns and dtypes."""
        hp = np.asarray(self._hparams, dtype=np.float64).reshape(-1, self.space.dim)
        frame = pd.DataFrame(
            {
                "step": np.asarray(self._step, dtype=np.int64),
                "member": np.asarray(self._member, dtype=np.int64),
                **{name: self._column(name, hp[:, i]) for i, name in enumerate(self.space.names)},
                "reward": np.asarray(self._reward, dtype=np.float64),
                "clone_source": np.asarray(self._source, dtype=np.int64),
            }
        )
        return frame

    def _column(self, name: str, values: np.ndarray) -> np.ndarray | list[Any]:
        """A hyperparameter column as written: numbers, or a categorical's choices."""
        if name in self.space.categorical_names:
            return self.space.decode(name, values)
        return values

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, space: SearchSpace) -> History:
        """Rebuild a history from [`to_frame`][metapbt.population.history.History.to_frame] output.

        Raises:
            ConfigError: If a documented column is missing.
        """
        missing = [c for c in (*RESERVED_COLUMNS, *space.names) if c not in frame.columns]
        if missing:
            raise ConfigError(f"history table lacks columns {missing}; was it written by metapbt?")
        history = cls(space)
        history._step = frame["step"].astype(int).tolist()
        history._member = frame["member"].astype(int).tolist()
        history._hparams = [
            space.encode(row) for row in frame[space.names].to_dict(orient="records")
        ]
        history._reward = frame["reward"].astype(float).tolist()
        history._source = frame["clone_source"].astype(int).tolist()
        return history

    def to_parquet(
        self, path: str | os.PathLike[str], labels: Mapping[str, str] | None = None
    ) -> None:
        """Write the history atomically (a temporary file renamed over ``path``).

        Args:
            path: The file.
            labels: What the rows belong to (a run writes ``{"agent": ...}``), stored as file
                metadata and read back by `read_labels`.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(self.to_frame(), preserve_index=False)
        meta = {
            b"metapbt.schema": SCHEMA_VERSION.encode(),
            b"metapbt.space": json.dumps(self.space.to_dict()).encode(),
        }
        if labels:
            meta[LABELS_KEY] = json.dumps({str(k): str(v) for k, v in labels.items()}).encode()
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
        write_atomic(path, lambda tmp: pq.write_table(table, tmp))

    @classmethod
    def from_parquet(cls, path: str | os.PathLike[str]) -> History:
        """Read a history written by [`to_parquet`][metapbt.population.history.History.to_parquet].

        Raises:
            MetaPBTError: If the file is unreadable or not a metapbt history.
        """
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (OSError, ValueError) as err:
            raise MetaPBTError(f"cannot read history file {str(path)!r}: {err}") from None
        meta = table.schema.metadata or {}
        version = meta.get(b"metapbt.schema", b"").decode()
        if version != SCHEMA_VERSION:
            raise MetaPBTError(
                f"{str(path)!r} has schema {version or 'none'!r}, expected {SCHEMA_VERSION!r}"
            )
        space = SearchSpace.from_dict(json.loads(meta[b"metapbt.space"]))
        return cls.from_frame(table.to_pandas(), space)

    def surrogate_data(
        self, max_rows: int = 1000, bridge_without_data: bool = True
    ) -> SurrogateData:
        """PB2's transformation of the history into GP training rows.

        For every member and every pair of consecutive sync points ``s < t`` it yields one row:
        the hyperparameters used in ``(s, t]``, the reward at the start of the interval (the
        donor's reward at ``s`` if the member cloned at ``s``: the reference's "bridge row"),
        and ``y = (R_t - R_start) / (t - s)``. Rows with a non-finite ``y`` (NaN rewards) are
        dropped; the last ``max_rows`` rows by time are kept.

        With ``bridge_without_data=False`` (stock PB2), the interval after a clone whose donor
        had no row yet at ``s`` yields no row: Ray's PB2 copies the donor's config there
        without logging a bridge row, so that interval never pairs.

        Unlike the reference, pairs are formed from consecutive rows of one member rather than
        by grouping on exact float equality of the hyperparameters, so a member that returns to
        an earlier configuration is not paired across the gap (reference weakness 32).

        In an asynchronous population (members report at their own steps) a clone's start
        reward is the donor's latest reward at or before the clone's step; in a synchronous one
        that is the donor's reward at that very step.
        """
        frame = self.to_frame()
        dim = self.space.dim
        if frame.empty:
            return _empty(dim)
        reward_at = _latest_rewards(frame)
        rows: list[tuple[float, float, np.ndarray, float, int]] = []
        hp = np.asarray(self._hparams, dtype=np.float64).reshape(-1, dim)  # frame's row order
        pairs: list[tuple[int, int]] = []  # (earlier row, next row) of one member, by index
        for _, group in frame.groupby("member", sort=True):
            # Rows in the order they were added: an asynchronous clone rewinds the member to
            # its donor's step, so its next row may have a smaller step than the clone row.
            pairs.extend(itertools.pairwise(group.index.to_numpy()))
        # In order of interval start: a donor's rows ending at s are known before any clone of
        # it at s is paired.
        pairs.sort(key=lambda pair: (frame.at[pair[0], "step"], pair[0]))
        has_data: dict[int, float] = {}  # member -> end step of its first row
        for prev, cur in pairs:
            start_step, end_step = frame.at[prev, "step"], frame.at[cur, "step"]
            source = frame.at[prev, "clone_source"]
            if source != NO_SOURCE:
                if not bridge_without_data and has_data.get(source, np.inf) > start_step:
                    continue
                # The interval starts from the donor's latest report (the same step when
                # synchronous; earlier when asynchronous, and the member rewinds to it).
                start_step, start_reward = reward_at(source, start_step)
            else:
                start_reward = frame.at[prev, "reward"]
            dt = end_step - start_step
            if dt <= 0:
                continue
            end_reward = frame.at[cur, "reward"]
            if not (np.isfinite(end_reward) and np.isfinite(start_reward)):
                continue  # a failed or infinite report gives no row (found by test_tell_many)
            y = (end_reward - start_reward) / dt
            if np.isfinite(y):
                member = frame.at[cur, "member"]
                rows.append((end_step, start_reward, hp[cur], y, member))
                has_data[member] = min(has_data.get(member, np.inf), end_step)
        if not rows:
            return _empty(dim)
        rows.sort(key=lambda row: (row[0], row[4]))
        rows = rows[-max_rows:]
        return SurrogateData(
            time=np.array([r[0] for r in rows], dtype=np.float64),
            reward_before=np.array([r[1] for r in rows], dtype=np.float64),
            hparams=np.stack([r[2] for r in rows]),
            target=np.array([r[3] for r in rows], dtype=np.float64),
            member=np.array([r[4] for r in rows], dtype=np.int64),
        )


def _latest_rewards(frame: pd.DataFrame) -> Callable[[int, int], tuple[int, float]]:
    """``latest(member, step)``: the member's last row at or before ``step``.

    Returns ``(its step, its reward)``, or ``(step, nan)`` when it has none.
    """
    by_member = {
        int(m): (g["step"].to_numpy(), g["reward"].to_numpy())
        for m, g in frame.sort_values("step", kind="stable").groupby("member", sort=False)
    }

    def latest(member: int, step: int) -> tuple[int, float]:
        steps, rewards = by_member[int(member)]
        i = int(np.searchsorted(steps, step, side="right")) - 1
        return (int(steps[i]), float(rewards[i])) if i >= 0 else (int(step), float("nan"))

    return latest


def _empty(dim: int) -> SurrogateData:
    return SurrogateData(
        time=np.zeros(0),
        reward_before=np.zeros(0),
        hparams=np.zeros((0, dim)),
        target=np.zeros(0),
        member=np.zeros(0, dtype=np.int64),
    )


def read_labels(path: str | os.PathLike[str]) -> dict[str, str]:
    """The labels a history file was written with (``{}`` for files written without them).

    Raises:
        MetaPBTError: If the file is unreadable or its labels are not a JSON object of strings.
    """
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, ValueError) as err:
        raise MetaPBTError(f"cannot read history file {str(path)!r}: {err}") from None
    raw = meta.get(LABELS_KEY)
    if raw is None:
        return {}
    try:
        labels = json.loads(raw)
    except ValueError:
        labels = None
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise MetaPBTError(f"{str(path)!r} has malformed labels {raw[:80]!r}")
    return labels

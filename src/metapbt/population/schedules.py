"""Schedule portfolios: hyperparameter schedules that worked on related tasks, to replay.

PBT's product is a schedule (hyperparameters over training), yet a configuration portfolio keeps
only points. A schedule portfolio keeps the schedules: from every stored run of a related task
(the meta-data's PB2 rows; no new training), the schedule its best member trained with, traced
back through its clones, is a candidate; candidates are scored on every related task and chosen
with the configuration portfolio's greedy coverage rule
(`metapbt.population.portfolio.greedy_select`), the target left out as the
meta-data always leaves it.

**Tracing a schedule.** A stored row is one member's interval ``(t - interval, t]``: its
hyperparameters, its reward at the start (the donor's, after a clone) and its reward change per
step. The best member at the last sync point is followed backwards: at each earlier sync point,
the member whose reward at its end equals the reward the followed member started its next
interval from (itself when it kept its weights, else its donor). Stored rows start at the second
interval (the first has no reward at its start), so the first interval replays the second's
hyperparameters.

**Scoring without training** (a deliberate choice: the configuration portfolio trains every
candidate on every task; a schedule portfolio reuses the meta-data alone). Candidate ``s`` on
task ``e`` scores the mean, over the schedule's intervals, of task ``e``'s fitted GP (the one
MetaPrior fits) at ``(t, typical reward of e at t, s(t))``: the predicted reward change per step
along the schedule. Columns are min-max normalised per task before the greedy rule, as a
configuration portfolio's are.

The schedule is indexed by environment steps per member (the meta-data's protocol is checked
against the run's, so its steps mean the same); past its last interval the last configuration
holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from metapbt.errors import ConfigError, MetaDataError
from metapbt.population.portfolio import greedy_select, normalise_columns
from metapbt.population.space import Config, SearchSpace

REWARD_MATCH = 1e-3
"""Relative tolerance for "the followed member kept its own reward" (rows hold float32 rewards)."""


@dataclass(frozen=True)
class Schedule:
    """Hyperparameters per interval: ``configs[k]`` trains the interval that ends at ``ends[k]``.

    Attributes:
        ends: Increasing interval ends (environment steps per member).
        configs: One configuration per interval.
        source: Where it came from (``"<task> seed <k>"``).
        final: The traced member's reward at the last sync point.
    """

    ends: tuple[int, ...]
    configs: tuple[Config, ...]
    source: str = ""
    final: float = math.nan

    def __post_init__(self) -> None:
        if not self.ends or len(self.ends) != len(self.configs):
            raise ConfigError(
                f"a schedule needs one configuration per interval, got {len(self.ends)} ends "
                f"and {len(self.configs)} configurations"
            )
        if any(b <= a for a, b in zip(self.ends, self.ends[1:], strict=False)):
            raise ConfigError(f"a schedule's interval ends must increase, got {self.ends}")

    def at(self, step: int) -> Config:
        """The configuration of the interval that starts at ``step`` (the last one past the end)."""
        k = int(np.searchsorted(np.asarray(self.ends), step, side="right"))
        return dict(self.configs[min(k, len(self.configs) - 1)])

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (`from_json` reads it)."""
        return {
            "ends": list(self.ends),
            "configs": [dict(c) for c in self.configs],
            "source": self.source,
            "final": None if not math.isfinite(self.final) else self.final,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], space: SearchSpace) -> Schedule:
        """Read `to_json` output, each configuration validated against ``space``."""
        final = data.get("final")
        return cls(
            tuple(int(e) for e in data["ends"]),
            tuple(space.validate(c) for c in data["configs"]),
            str(data.get("source", "")),
            math.nan if final is None else float(final),
        )


def trace_best(rows: pd.DataFrame, space: SearchSpace, interval: int, source: str = "") -> Schedule:
    """The schedule of the best member of one stored run, traced back through its clones.

    Args:
        rows: The run's rows (``time``, ``member``, ``reward_before``, ``target`` and one column
            per hyperparameter).
        space: The search space (its names are the hyperparameter columns).
        interval: Environment steps per interval (the run's protocol).
        source: A label for the schedule.

    Raises:
        MetaDataError: If the rows are empty or a sync point lacks the followed member.
    """
    if rows.empty:
        raise MetaDataError(f"no rows to trace a schedule from ({source or 'a stored run'})")
    ends = rows["reward_before"].to_numpy(float) + rows["target"].to_numpy(float) * interval
    frame = rows.assign(_end=ends)
    times = sorted(frame["time"].unique())
    by_time = {t: frame[frame["time"] == t].set_index("member") for t in times}
    last = by_time[times[-1]]
    member = int(last["_end"].idxmax())
    final = float(last.loc[member, "_end"])
    configs: list[Config] = []
    for k in range(len(times) - 1, -1, -1):
        now = by_time[times[k]]
        if member not in now.index:
            raise MetaDataError(f"{source}: member {member} has no row at step {int(times[k])}")
        configs.append(space.validate(_config(now.loc[member], space)))
        if k == 0:
            break
        before = by_time[times[k - 1]]
        start = float(now.loc[member, "reward_before"])
        own = float(before.loc[member, "_end"]) if member in before.index else math.nan
        if not math.isclose(own, start, rel_tol=REWARD_MATCH, abs_tol=REWARD_MATCH):
            member = int((before["_end"] - start).abs().idxmin())  # its donor
    configs.reverse()
    first = int(times[0]) - interval
    steps = ([first] if first > 0 else []) + [int(t) for t in times]
    return Schedule(
        tuple(steps), tuple(([configs[0]] if first > 0 else []) + configs), source, final
    )


def _config(row: pd.Series, space: SearchSpace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in space.names:
        value = row[name]
        values[name] = value.item() if hasattr(value, "item") else value
    return space.clip(values) if not space.categorical_names else values


def score_matrix(
    schedules: Sequence[Schedule],
    tasks: Sequence[Any],
    gps: Sequence[Any],
    space: SearchSpace,
    log_space: bool = True,
) -> np.ndarray:
    """``[S, T]``: each task's GP's mean predicted reward change per step along each schedule.

    Args:
        schedules: The candidates.
        tasks: [`NormalisedTask`][metapbt.metadata.source.NormalisedTask] per meta task.
        gps: The fitted GP of each task (same order).
        space: The search space.
        log_space: Whether the GPs model log-scaled parameters in log space.
    """
    scores = np.full((len(schedules), len(tasks)), np.nan)
    for j, (task, gp) in enumerate(zip(tasks, gps, strict=True)):
        rows = task.task
        for i, schedule in enumerate(schedules):
            times = np.asarray(schedule.ends, dtype=float)
            typical = np.array([_typical_reward(rows.time, rows.reward_before, t) for t in times])
            columns = np.array([space.encode(c) for c in schedule.configs], dtype=float)
            unit = space.model_columns(columns, log_space, clip=True)
            mean, _ = gp.predict(task.norm.inputs(times, typical, unit))
            scores[i, j] = float(np.mean(np.asarray(mean)))
    return scores


def _typical_reward(time: np.ndarray, reward: np.ndarray, t: float) -> float:
    """The median reward at the start of the task's rows nearest in time to ``t``."""
    nearest = np.abs(time - t)
    return float(np.median(reward[nearest == nearest.min()]))


def select_schedules(scores: np.ndarray, size: int) -> list[int]:
    """Greedy coverage over the min-max normalised columns; ``size`` picks, cycling if fewer.

    With fewer candidates than ``size`` every candidate is chosen and the selection order
    repeats (member ``i`` replays pick ``i mod S``).
    """
    rows = int(np.shape(scores)[0])
    if rows == 0:
        raise ConfigError("no schedule to choose from")
    order = greedy_select(normalise_columns(scores), min(size, rows))
    return [order[i % len(order)] for i in range(size)]

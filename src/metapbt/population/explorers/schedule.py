"""Schedule transfer: every member replays a schedule chosen from the meta-data.

The explorer owns the start: at construction of the population it reads the meta-data's runs
(the target left out), traces each run's best schedule, scores the candidates on every related
task with the fitted meta GPs and picks one per member by greedy coverage
([`metapbt.population.schedules`][metapbt.population.schedules]). Member ``i`` then trains, at
every sync point, with its schedule's configuration for the next interval. A member that
clones a donor takes the donor's weights *and* its schedule (``schedule-pbt``); with no exploit
(``schedule-replay``) every member replays its own schedule for the whole run, the schedule
analogue of holding a configuration portfolio (``random-warm``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from metapbt.errors import ConfigError
from metapbt.metadata.source import MetaSource
from metapbt.population.explorers.base import Explorer, ExploreRequest, RoundContext
from metapbt.population.explorers.meta_models import fitted_tasks
from metapbt.population.schedules import Schedule, score_matrix, select_schedules, trace_best
from metapbt.population.space import Config, SearchSpace

logger = logging.getLogger(__name__)


def schedule_portfolio(
    source: MetaSource, space: SearchSpace, size: int, log_space: bool = True
) -> tuple[list[Schedule], np.ndarray]:
    """The ``size`` schedules chosen from ``source`` (one per member) and the score matrix.

    Raises:
        MetaDataError: On unreadable meta-data or a run whose schedule cannot be traced.
        ConfigError: If no meta task's GP can be fitted, or a stored run has no interval.
    """
    candidates = []
    for run in source.runs(space.to_dict()):
        interval = (run.protocol or {}).get("interval") or _spacing(run.rows["time"].to_numpy())
        if not interval:
            raise ConfigError(
                f"meta-data run {run.path} records no interval and has rows at one sync point "
                "only, so its schedule has no clock; rebuild it with `metapbt metadata build`"
            )
        label = f"{run.task} seed {run.seed}"
        candidates.append(trace_best(run.rows, space, int(interval), label))
    tasks, gps = fitted_tasks(source, space, log_space)
    scores = score_matrix(candidates, tasks, gps, space, log_space)
    picks = select_schedules(scores, size)
    logger.info(
        "schedule portfolio from %d candidates on %d tasks: %s",
        len(candidates),
        len(tasks),
        ", ".join(candidates[i].source for i in picks),
    )
    return [candidates[i] for i in picks], scores


def _spacing(times: np.ndarray) -> int | None:
    """The smallest gap between a run's sync points (its interval, when none is recorded)."""
    gaps = np.diff(np.unique(times))
    return int(gaps.min()) if gaps.size else None


@dataclass
class ScheduleExplorer(Explorer):
    """Members replay schedules chosen from the meta-data; a clone follows its donor's.

    Args:
        source: The meta-data and the target.
        log_space: Model log-scaled parameters in log space (the meta GPs' inputs).

    Attributes:
        schedules: One per member, chosen when the population starts.
        follows: The schedule each member replays now (its own, or its donor's after a clone).
    """

    source: MetaSource
    log_space: bool = True
    schedules: list[Schedule] = field(default_factory=list)
    follows: list[int] = field(default_factory=list)
    _space: SearchSpace | None = field(default=None, init=False, repr=False)

    def initial(self, space: SearchSpace, size: int) -> list[Config]:  # noqa: D102
        if space.categorical_names:
            raise ConfigError(
                f"schedule transfer models numeric parameters only, but {space.categorical_names} "
                "are categorical"
            )
        self._space = space
        self.schedules, _ = schedule_portfolio(self.source, space, size, self.log_space)
        self.follows = list(range(size))
        return [s.at(0) for s in self.schedules]

    def retune(  # noqa: D102
        self, context: RoundContext, member: int, config: Config, rng: np.random.Generator
    ) -> Config:
        return self.schedules[self.follows[member]].at(context.step)

    def explore(  # noqa: D102
        self, context: RoundContext, request: ExploreRequest, rng: np.random.Generator
    ) -> Config:
        self.follows[request.member] = self.follows[request.donor]
        return self.schedules[self.follows[request.member]].at(context.step)

    def state_dict(self) -> dict[str, Any]:  # noqa: D102
        return {
            "follows": list(self.follows),
            "schedules": [s.to_json() for s in self.schedules],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: D102
        if self._space is None:  # never in a population: it calls initial() first
            raise ConfigError("a schedule explorer's state loads after initial() chose a start")
        self.schedules = [Schedule.from_json(s, self._space) for s in state["schedules"]]
        self.follows = [int(i) for i in state["follows"]]

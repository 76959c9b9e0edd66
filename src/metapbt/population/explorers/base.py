"""The explorer lifecycle: what every explore strategy implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from metapbt.population.history import History
from metapbt.population.space import Config, SearchSpace


@dataclass(frozen=True)
class RoundContext:
    """What an explorer may look at during one sync point.

    Attributes:
        space: The search space.
        history: Everything recorded so far, this sync point's rows included.
        step: The sync point (environment steps per member).
        rewards: ``[N]`` rewards reported at this sync point.
        size: Population size.
    """

    space: SearchSpace
    history: History
    step: int
    rewards: np.ndarray
    size: int


@dataclass(frozen=True)
class ExploreRequest:
    """One member to re-configure after it cloned a donor.

    Attributes:
        member: The member being replaced.
        donor: The member it copies.
        donor_config: The donor's current hyperparameters.
        donor_reward: The donor's reward at this sync point.
        pending: Configurations already chosen earlier in this sync point (in choice order).
    """

    member: int
    donor: int
    donor_config: Config
    donor_reward: float
    pending: tuple[Config, ...]


class Explorer(ABC):
    """Chooses new hyperparameters for members that cloned a donor.

    Lifecycle, per sync point with at least one clone: `begin_round` once (fit models
    here), then `explore` once per cloning member, in ascending member order, each call
    seeing the earlier choices of the round as ``request.pending``. All randomness comes from
    the ``rng`` passed in, so a seeded population is reproducible.

    ``handles_categorical``: whether it can explore a space with categorical parameters
    (models that need numbers, the GP family's, cannot). ``models_numbers``: whether it needs
    at least one numeric parameter (the GP family's, PB2-Mix's included, model the numeric part).
    """

    handles_categorical: ClassVar[bool] = False
    models_numbers: ClassVar[bool] = False

    def begin_round(self, context: RoundContext, rng: np.random.Generator) -> None:  # noqa: B027
        """Prepare for the explores of one sync point (no-op by default)."""

    @abstractmethod
    def explore(
        self, context: RoundContext, request: ExploreRequest, rng: np.random.Generator
    ) -> Config:
        """Return the new hyperparameters (inside the space's bounds) for ``request.member``."""

    def initial(self, space: SearchSpace, size: int) -> list[Config] | None:
        """The explorer's own start for ``size`` members, or ``None`` (the default).

        ``None`` leaves the start to the population's initializer; an explorer that owns the
        start (a schedule replay starts every member on its schedule) returns the configurations,
        and a population given both refuses.
        """
        return None

    def retune(
        self, context: RoundContext, member: int, config: Config, rng: np.random.Generator
    ) -> Config:
        """The hyperparameters a member that kept its weights trains with next (``config``).

        Called at every sync point after the round's explores, in ascending member order, for
        each member that did not clone; the default keeps ``config`` (every method but the
        schedule replays).
        """
        return config

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state carried across sync points (empty by default)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027
        """Restore `state_dict` output (no-op by default)."""

"""Initializers: the hyperparameters every member starts with."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from metapbt.population.space import Config, SearchSpace


class Initializer(ABC):
    """Chooses the initial configuration of every member."""

    @abstractmethod
    def initial(self, space: SearchSpace, size: int, rng: np.random.Generator) -> list[Config]:
        """Return ``size`` configurations inside ``space``."""


class RandomInitializer(Initializer):
    """Independent draws from the search space (log-uniform for log-scaled parameters)."""

    def initial(  # noqa: D102
        self, space: SearchSpace, size: int, rng: np.random.Generator
    ) -> list[Config]:
        return [space.sample(rng) for _ in range(size)]


@dataclass(frozen=True)
class GivenInitializer(Initializer):
    """Given configurations first, in order; random draws fill up a larger population.

    Args:
        configs: Configurations to start from (validated against the space when used).
    """

    configs: tuple[Mapping[str, float], ...]

    def initial(  # noqa: D102
        self, space: SearchSpace, size: int, rng: np.random.Generator
    ) -> list[Config]:
        given = [space.validate(c) for c in self.configs[:size]]
        return given + [space.sample(rng) for _ in range(size - len(given))]


def given(configs: Sequence[Mapping[str, float]]) -> GivenInitializer:
    """Shorthand for :class:`GivenInitializer`."""
    return GivenInitializer(tuple(configs))

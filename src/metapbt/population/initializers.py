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
class RangeInitializer(Initializer):
    """Independent draws from part of the space: some parameters' bounds narrowed.

    The explorers keep the full space; only the start is narrowed (for example a population
    that starts in the top decile of the ``lr`` range: "start high", without meta-data).

    Args:
        ranges: ``name -> (low, high)``, inside the parameter's bounds, on its own scale (a
            log-scaled parameter is drawn log-uniformly from the narrowed range).
    """

    ranges: tuple[tuple[str, tuple[float, ...]], ...]  # (low, high): narrowed() checks the length

    def initial(  # noqa: D102
        self, space: SearchSpace, size: int, rng: np.random.Generator
    ) -> list[Config]:
        narrowed = space.narrowed(dict(self.ranges))
        return [narrowed.sample(rng) for _ in range(size)]


def within(ranges: Mapping[str, tuple[float, float]]) -> RangeInitializer:
    """Shorthand for [`RangeInitializer`][metapbt.population.initializers.RangeInitializer]."""
    return RangeInitializer(tuple((name, tuple(b)) for name, b in ranges.items()))


@dataclass(frozen=True)
class GivenInitializer(Initializer):
    """Given configurations first, in order; ``fill`` draws the rest of a larger population.

    Args:
        configs: Configurations to start from (validated against the space when used).
        fill: How members beyond ``configs`` start (random draws from the whole space).
    """

    configs: tuple[Mapping[str, float], ...]
    fill: Initializer = RandomInitializer()

    def initial(  # noqa: D102
        self, space: SearchSpace, size: int, rng: np.random.Generator
    ) -> list[Config]:
        given = [space.validate(c) for c in self.configs[:size]]
        return given + self.fill.initial(space, size - len(given), rng)


def given(
    configs: Sequence[Mapping[str, float]], fill: Initializer | None = None
) -> GivenInitializer:
    """Shorthand for [`GivenInitializer`][metapbt.population.initializers.GivenInitializer]."""
    return GivenInitializer(tuple(configs), fill or RandomInitializer())

"""Explorers without a model: keep the donor's configuration, and PBT's perturbation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from metapbt.errors import ConfigError
from metapbt.population.explorers.base import Explorer, ExploreRequest, RoundContext
from metapbt.population.space import Categorical, Config


class NoPerturbation(Explorer):
    """Continue with the donor's hyperparameters unchanged.

    Combined with no exploit (the ``random`` method) every member keeps its initial,
    independently sampled configuration for the whole run: random search.
    """

    handles_categorical = True

    def explore(  # noqa: D102
        self, context: RoundContext, request: ExploreRequest, rng: np.random.Generator
    ) -> Config:
        return dict(request.donor_config)


@dataclass(frozen=True)
class PBTPerturbation(Explorer):
    """PBT's explore (Ray's defaults), independently per hyperparameter.

    With probability ``resample_probability`` draw a fresh value from the search space
    (log-uniform for log-scaled parameters); otherwise multiply the donor's value by one of
    ``factors`` chosen uniformly. The result is clipped into the bounds (and rounded for ints).
    A categorical is redrawn uniformly from its choices with the same probability (it may land
    on the donor's choice again), and otherwise keeps the donor's: a category has no neighbour
    to step to, as in Ray's PBT for ``tune.choice``.

    Args:
        resample_probability: Chance of a fresh draw, in [0, 1].
        factors: Multiplicative perturbations, all positive.
    """

    resample_probability: float = 0.25
    factors: tuple[float, ...] = (1.2, 0.8)
    handles_categorical = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.resample_probability <= 1.0:
            raise ConfigError(
                f"resample_probability must be in [0, 1], got {self.resample_probability}"
            )
        if not self.factors or any(f <= 0 for f in self.factors):
            raise ConfigError(f"factors must be a non-empty tuple of positives, got {self.factors}")

    def explore(  # noqa: D102
        self, context: RoundContext, request: ExploreRequest, rng: np.random.Generator
    ) -> Config:
        new: dict[str, Any] = {}
        for name in context.space.names:
            param = context.space[name]
            if isinstance(param, Categorical):
                resample = rng.uniform() < self.resample_probability
                new[name] = param.sample(rng) if resample else request.donor_config[name]
            elif rng.uniform() < self.resample_probability:
                new[name] = float(param.sample(rng))
            else:
                new[name] = request.donor_config[name] * float(rng.choice(self.factors))
        return context.space.clip(new)

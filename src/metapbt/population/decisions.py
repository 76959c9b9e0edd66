"""Typed decisions returned by [`Population.tell`][metapbt.population.population.Population.tell].

One per member: a [`Keep`][metapbt.population.decisions.Keep] or a
[`Clone`][metapbt.population.decisions.Clone].
"""

from __future__ import annotations

from dataclasses import dataclass

from metapbt.population.space import Config


@dataclass(frozen=True)
class Keep:
    """The member keeps its weights and hyperparameters.

    Attributes:
        member: Member index.
        config: Its (unchanged) hyperparameters.
    """

    member: int
    config: Config


@dataclass(frozen=True)
class Clone:
    """The member copies ``source``'s weights and optimiser state, then uses ``config``.

    Attributes:
        member: Member index (the one being replaced).
        source: Donor member index.
        config: Hyperparameters to continue with (chosen by the explorer).
    """

    member: int
    source: int
    config: Config


Decision = Keep | Clone

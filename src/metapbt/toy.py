"""A synthetic population-training problem with a moving optimum (no RL, runs in seconds).

Each member's "weights" are a scalar score. During an interval of training its score grows at a
rate that depends on how close its hyperparameters are to an optimum that moves through the
search space over time, as in the PBT and PB2 papers' toy examples: a fixed configuration is
good only for part of the run, so a schedule that follows the optimum wins. Cloning copies the
score (the weights); the reported reward is the score plus optional observation noise.

With ``choices``, the problem also has a categorical dimension whose best choice changes
during the run (PB2-Mix's setting): the rate is multiplied by 1 on the best choice and by
``off`` on the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from metapbt.errors import ConfigError
from metapbt.population.decisions import Clone
from metapbt.population.population import Population
from metapbt.population.space import Choice, SearchSpace, default_space


@dataclass(frozen=True)
class MovingOptimum:
    """The toy problem.

    The optimum moves linearly, in the search space's unit cube (log scale for log-scaled
    parameters), from ``start`` to ``end`` over ``budget`` steps. The growth rate at unit-cube
    point ``u`` and time ``t`` is ``exp(-|u - u*(t)|^2 / (2 width^2)) / budget``, so a member
    that always sits on the optimum ends with score 1.

    Args:
        budget: Steps per member.
        interval: Steps between sync points.
        width: Width of the good region, in unit-cube units.
        noise: Standard deviation of the observation noise on reported rewards.
        start: Optimum at step 0 (unit cube), one entry per search-space dimension.
        end: Optimum at the end of the budget.
        substeps: Integration steps per interval.
        choices: A categorical dimension's choices (empty: none). The best is ``choices[0]``
            until ``switch * budget`` steps, then ``choices[1]``.
        switch: When the best choice changes, as a fraction of the budget.
        off: The rate's factor on a choice that is not the best, in [0, 1).
    """

    budget: int = 600_000
    interval: int = 40_000
    width: float = 0.3
    noise: float = 0.005
    start: tuple[float, ...] = (0.15, 0.85, 0.2)
    end: tuple[float, ...] = (0.85, 0.15, 0.8)
    substeps: int = 20
    choices: tuple[Choice, ...] = ()
    switch: float = 0.5
    off: float = 0.3

    def __post_init__(self) -> None:
        if self.interval < 1 or self.budget < self.interval:
            raise ConfigError(
                f"need 1 <= interval <= budget, got interval={self.interval}, budget={self.budget}"
            )
        if len(self.start) != len(self.end):
            raise ConfigError("start and end must have the same dimension")
        if self.width <= 0 or self.noise < 0:
            raise ConfigError(f"need width > 0 and noise >= 0, got {self.width}, {self.noise}")
        if self.choices and (
            len(set(self.choices)) < 2 or len(set(self.choices)) < len(self.choices)
        ):
            raise ConfigError(f"choices must be at least 2 distinct values, got {self.choices}")
        if not (0 <= self.switch <= 1 and 0 <= self.off < 1):
            raise ConfigError(f"need 0 <= switch <= 1, 0 <= off < 1, got {self.switch}, {self.off}")

    def best_choice(self, step: float) -> Choice | None:
        """The categorical dimension's best choice at ``step`` (``None`` without one)."""
        if not self.choices:
            return None
        return self.choices[0] if step < self.switch * self.budget else self.choices[1]

    def optimum(self, step: float) -> np.ndarray:
        """``u*(step)`` in the unit cube."""
        frac = min(max(step / self.budget, 0.0), 1.0)
        return (1 - frac) * np.asarray(self.start) + frac * np.asarray(self.end)

    def gain(
        self, unit: np.ndarray, step_from: int, step_to: int, choice: Choice | None = None
    ) -> float:
        """Score gained by training at ``unit`` (with ``choice``) from one step to another."""
        times = np.linspace(step_from, step_to, self.substeps + 1)
        mids = 0.5 * (times[1:] + times[:-1])
        dist2 = np.array([np.sum((unit - self.optimum(t)) ** 2) for t in mids])
        rate = np.exp(-dist2 / (2 * self.width**2)) / self.budget
        if self.choices:
            rate = rate * np.array(
                [1.0 if choice == self.best_choice(t) else self.off for t in mids]
            )
        return float(np.sum(rate * np.diff(times)))


@dataclass(frozen=True)
class ToyResult:
    """Outcome of one toy run.

    Attributes:
        steps: Sync points.
        best: Best *true* (noise-free) score in the population at each sync point.
        population: The population, with its history.
    """

    steps: list[int]
    best: list[float]
    population: Population = field(repr=False)

    @property
    def final(self) -> float:
        """Best true score at the end of the run."""
        return self.best[-1]


def run_toy(
    method: str,
    seed: int,
    size: int = 4,
    problem: MovingOptimum | None = None,
    space: SearchSpace | None = None,
    held: Choice | None = None,
) -> ToyResult:
    """Drive a [`Population`][metapbt.population.population.Population] through the toy problem.

    Args:
        method: A registered method name.
        seed: Seed of the population and of the observation noise.
        size: Population size.
        problem: The toy problem; defaults to `MovingOptimum`.
        space: Search space; defaults to the paper's PPO space (3 dimensions). With a
            problem's ``choices``, one categorical parameter of the space takes them (or none:
            then ``held`` is every member's choice, all run long).
        held: The categorical's value when the space has none (a method that tunes the
            numeric part only, the category held fixed).
    """
    problem = problem or MovingOptimum()
    space = space or default_space()
    numeric = space.numeric()
    if len(problem.start) != numeric.dim:
        raise ConfigError(
            f"the problem has {len(problem.start)} dimensions, the space {numeric.dim} numeric"
        )
    cats = space.categorical_names
    if problem.choices:
        if len(cats) > 1 or (
            cats and set(space.categoricals[cats[0]].choices) != set(problem.choices)
        ):
            raise ConfigError(
                f"the problem's choices {list(problem.choices)} need one categorical parameter "
                f"with them, the space has {cats}"
            )
        if not cats and held not in problem.choices:
            raise ConfigError(f"held must be one of {list(problem.choices)}, got {held!r}")
    elif cats:
        raise ConfigError(f"the problem has no categorical dimension, the space has {cats}")
    pop = Population(space, size=size, method=method, seed=seed)
    noise_rng = np.random.default_rng([seed, 1])
    scores = np.zeros(size)
    steps, best = [], []
    step = 0
    while step < problem.budget:
        nxt = min(step + problem.interval, problem.budget)
        for member, config in enumerate(pop.ask()):
            unit = numeric.to_unit({k: config[k] for k in numeric.names})
            choice = config[cats[0]] if cats else held
            scores[member] += problem.gain(unit, step, nxt, choice)
        step = nxt
        steps.append(step)
        best.append(float(scores.max()))
        observed = scores + problem.noise * noise_rng.standard_normal(size)
        if step >= problem.budget:
            pop.tell(step, observed)  # recorded in the history; no more training follows
            break
        for decision in pop.tell(step, observed):
            if isinstance(decision, Clone):
                scores[decision.member] = scores[decision.source]
    return ToyResult(steps, best, pop)

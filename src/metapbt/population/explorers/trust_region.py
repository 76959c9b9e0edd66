"""A trust region for the PB2 family: picks stay in a box around the donor that adapts.

TuRBO's rule (Eriksson et al., NeurIPS 2019), as BG-PBT brought it to population-based
training (Wan et al., AutoML-Conf 2022): the acquisition is maximised inside a box of side
``length`` (in the unit cube) centred on the donor's configuration, clipped to the cube. After
every sync point the population's best reward is compared with the best of all earlier sync
points:

* a *success* is a best above the earlier best by more than ``tolerance`` times its magnitude
  (TuRBO's 1e-3); ``success_tol`` successes in a row double the side (at most ``max_length``);
* anything else is a *failure*; ``failure_tol`` failures in a row halve it; a side below
  ``min_length`` starts again from ``init_length`` (TuRBO's restart, without discarding data).

A good start is kept: a donor that is already good is explored nearby, and the box only widens
while the population improves. The rule is pure (`next_state`), its state a small dict in
the explorer's checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from metapbt.errors import ConfigError
from metapbt.population.history import History


@dataclass(frozen=True)
class TrustRegionSettings:
    """How the box adapts.

    Chosen on ``benchmarks/explore_quality.py`` (20 seeds; median distance of the picks to the
    optimum, ``pb2-star-tr`` on rising / moving / good start): a side of 0.2 at the start
    gives 0.331 / 0.385 / 0.151 (``pb2-star`` 0.469 / 0.389 / 0.426); 0.4 gives 0.343 / 0.459
    / 0.174; TuRBO's own (0.8, up to 1.6, three successes to grow) 0.429 / 0.400 / 0.187.

    Args:
        init_length: Side of the box at the start and after a restart.
        min_length: A side below this restarts at ``init_length``.
        max_length: Largest side (1: the whole cube, wherever the donor is).
        success_tol: Successes in a row that double the side.
        failure_tol: Failures in a row that halve it.
        tolerance: Relative improvement of the best reward that counts as a success.
    """

    init_length: float = 0.2
    min_length: float = 0.2 / 2**4
    max_length: float = 1.0
    success_tol: int = 2
    failure_tol: int = 2
    tolerance: float = 1e-3

    def __post_init__(self) -> None:
        if not 0 < self.min_length <= self.init_length <= self.max_length <= 2:
            raise ConfigError(
                "trust region needs 0 < min_length <= init_length <= max_length <= 2, got "
                f"{self.min_length}, {self.init_length}, {self.max_length}"
            )
        if self.success_tol < 1 or self.failure_tol < 1 or self.tolerance < 0:
            raise ConfigError("trust region tolerances must be >= 1 (counts) and >= 0 (relative)")


@dataclass(frozen=True)
class TrustRegionState:
    """The box's side, the streaks, the best reward so far and the last sync point seen."""

    length: float
    successes: int = 0
    failures: int = 0
    best: float = -math.inf
    last_step: int = -1


def next_state(
    state: TrustRegionState, best: float, step: int, settings: TrustRegionSettings
) -> TrustRegionState:
    """The state after a sync point whose best reward is ``best`` (non-finite: a failure)."""
    if state.best == -math.inf:  # the first sync point only sets the bar
        first = best if math.isfinite(best) else -math.inf
        return TrustRegionState(state.length, 0, 0, first, step)
    margin = settings.tolerance * abs(state.best)
    if math.isfinite(best) and best > state.best + margin:
        successes, failures = state.successes + 1, 0
    else:
        successes, failures = 0, state.failures + 1
    length = state.length
    if successes == settings.success_tol:
        length, successes = min(2 * length, settings.max_length), 0
    if failures == settings.failure_tol:
        length, failures = length / 2, 0
    if length < settings.min_length:
        length = settings.init_length
    new_best = max(state.best, best) if math.isfinite(best) else state.best
    return TrustRegionState(length, successes, failures, new_best, step)


def box(center: np.ndarray, length: float) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` of the box of side ``length`` around ``center``, clipped to the cube."""
    center = np.clip(np.asarray(center, np.float64), 0.0, 1.0)
    return np.clip(center - length / 2, 0.0, 1.0), np.clip(center + length / 2, 0.0, 1.0)


@dataclass
class TrustRegion:
    """The adaptive box of one population (state carried across sync points)."""

    settings: TrustRegionSettings = TrustRegionSettings()
    state: TrustRegionState = field(init=False)  # from the settings, or load_state_dict
    lengths: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = TrustRegionState(self.settings.init_length)

    def observe(self, history: History) -> None:
        """Update the box with every sync point in ``history`` it has not seen yet."""
        frame = history.to_frame()
        best = frame.groupby("step")["reward"].max()
        for step, value in best.items():
            if int(step) > self.state.last_step:
                self.state = next_state(self.state, float(value), int(step), self.settings)
                self.lengths.append({"step": int(step), "length": self.state.length})

    def bounds(self, center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The box around ``center`` (unit-cube coordinates)."""
        return box(center, self.state.length)

    def state_dict(self) -> dict[str, Any]:
        """The state and the side per sync point, JSON-able."""
        return {"state": asdict(self.state), "lengths": list(self.lengths)}

    def load_state_dict(self, data: dict[str, Any]) -> None:
        """Restore `state_dict` output."""
        self.state = TrustRegionState(**data["state"])
        self.lengths = list(data["lengths"])

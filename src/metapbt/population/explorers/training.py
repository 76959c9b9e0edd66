"""PB2's training rows, normalised for the GP, and the query point of a new configuration."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from metapbt.population.history import SurrogateData
from metapbt.population.space import SearchSpace

_EPS = 1e-8


def scale_column(value: np.ndarray | float, low: float, high: float) -> np.ndarray:
    """Min-max scale ``value`` by ``[low, high]`` as the reference does (``+ 1e-8``).

    A zero-width range (every value equal: MountainCar stuck at -200) maps to 0 instead of
    dividing by ``1e-8``, which sent any other value to about ``1e8``.
    """
    value = np.asarray(value, np.float64)
    if not high - low > 1e-12 * max(1.0, abs(low), abs(high)):
        return np.zeros_like(value)
    return (value - low) / (high - low + _EPS)


@dataclass(frozen=True)
class TrainingSet:
    """PB2 rows normalised for the GP: ``x = (t, r, h) [n, 2 + d]``, ``y [n]``.

    With ``categorical`` (k) categorical parameters, ``x = (t, r, c, h)``: their category
    indices come right after ``(t, r)``, then the numeric parameters (search-space order within
    each group), so that an acquisition holds the categories fixed with the query point.

    ``t`` and ``r`` are min-max scaled by ``t_range`` and ``r_range`` (the rows' own, the reward
    range optionally widened by this sync point's rewards), ``h`` by the search-space bounds,
    and ``y`` is standardised (population std) and clipped to [-2, 2].

    Attributes:
        raw_context: ``[n, 2]`` the rows' raw ``(t, r)``.
    """

    x: np.ndarray
    y: np.ndarray
    members: np.ndarray
    t_range: tuple[float, float]
    r_range: tuple[float, float]
    raw_context: np.ndarray
    categorical: int = 0

    def context(self, step: float, reward: float) -> np.ndarray:
        """The normalised ``(t, r)`` of raw values."""
        return np.array(
            [scale_column(step, *self.t_range), scale_column(reward, *self.r_range)], np.float64
        )

    def query(
        self,
        step: float,
        donor: int,
        donor_reward: float,
        mode: Literal["donor_last_row", "donor_now"],
    ) -> np.ndarray:
        """The normalised ``(t, r)`` at which a clone of ``donor`` continues.

        ``"donor_last_row"``: the raw time and reward-before of the donor's last row (the
        reference); ``"donor_now"``: the sync point and the donor's current reward.
        """
        if mode == "donor_now":
            return self.context(step, donor_reward)
        last = np.flatnonzero(self.members == donor)[-1]
        return self.context(*self.raw_context[last])

    def rescaled(self, t_range: tuple[float, float], r_range: tuple[float, float]) -> TrainingSet:
        """The same rows with ``(t, r)`` scaled by other ranges (e.g. the meta-data's)."""
        out = replace(self, t_range=t_range, r_range=r_range, x=self.x.copy())
        out.x[:, 0] = scale_column(self.raw_context[:, 0], *t_range)
        out.x[:, 1] = scale_column(self.raw_context[:, 1], *r_range)
        return out


def training_set(
    data: SurrogateData,
    space: SearchSpace,
    log_space: bool,
    clip: bool,
    extra_rewards: np.ndarray | None = None,
) -> TrainingSet:
    """Normalise PB2 rows (see `TrainingSet`).

    Args:
        data: The history's PB2 rows.
        space: The search space (bounds of ``h``).
        log_space: Scale log parameters in log space.
        clip: Clip ``h`` into [0, 1].
        extra_rewards: Rewards that widen the reward column's range (the finite ones), so a
            query at one of them stays inside the scaled range.
    """
    t_range = (float(data.time.min()), float(data.time.max()))
    rewards = data.reward_before
    if extra_rewards is not None:
        extra = np.asarray(extra_rewards, np.float64)
        rewards = np.concatenate([rewards, extra[np.isfinite(extra)]])
    r_range = (float(rewards.min()), float(rewards.max()))
    h = space.model_columns(data.hparams, log_space, clip)
    cats = space.categorical_names
    y = np.clip((data.target - data.target.mean()) / (data.target.std() + _EPS), -2.0, 2.0)
    raw = np.column_stack([data.time, data.reward_before]).astype(np.float64)
    x = np.column_stack(
        [scale_column(data.time, *t_range), scale_column(data.reward_before, *r_range), h]
    )
    return TrainingSet(x, y, data.member, t_range, r_range, raw, len(cats))

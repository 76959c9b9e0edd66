"""Normalising a meta task's rows, and mapping between a meta task and the target's window.

All maps are affine, so they are stored as coefficients and applied inside compiled
acquisition functions (the reference's "task-to-task scaling").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

import numpy as np

_EPS = 1e-8


@dataclass(frozen=True)
class MetaNormaliser:
    """Full-range statistics of one meta task.

    Attributes:
        context_min: ``[2]`` min of (time, reward_before) over all rows.
        context_max: ``[2]`` max of the same.
        y_mean: Mean of the raw targets over all rows.
        y_std: Population std of the raw targets (plus 1e-8).
    """

    context_min: np.ndarray
    context_max: np.ndarray
    y_mean: float
    y_std: float

    @classmethod
    def fit(cls, time: np.ndarray, reward: np.ndarray, y: np.ndarray) -> MetaNormaliser:
        """Statistics of a task's pooled rows."""
        ctx = np.column_stack([time, reward])
        return cls(ctx.min(0), ctx.max(0), float(y.mean()), float(y.std() + _EPS))

    def inputs(self, time: np.ndarray, reward: np.ndarray, h: np.ndarray) -> np.ndarray:
        """``[n, 2 + d]``: context min-max scaled over all rows, then ``h`` as given.

        ``h`` is the surrogate's hyperparameter columns
        ([`model_columns`][metapbt.population.space.SearchSpace.model_columns]: category indices,
        then the unit cube, clipped there).
        """
        ctx = (np.column_stack([time, reward]) - self.context_min) / (
            self.context_max - self.context_min + _EPS
        )
        return np.column_stack([ctx, h])

    def targets(self, y: np.ndarray) -> np.ndarray:
        """Standardised targets, clipped to [-2, 2] as the target's are."""
        return np.clip((y - self.y_mean) / self.y_std, -2.0, 2.0)


@dataclass(frozen=True)
class TaskScaling:
    """Affine maps between the target's normalised window and one meta task.

    ``x_meta[:2] = x_target[:2] * input_scale + input_offset`` (hyperparameter columns are
    shared: both sides scale them by the bounds), and a meta prediction ``(mean, var)`` becomes
    ``(mean * output_scale + output_offset, var * output_scale**2)`` on the target's scale.
    """

    input_scale: np.ndarray
    input_offset: np.ndarray
    output_scale: float
    output_offset: float

    def to_meta(self, x: np.ndarray) -> np.ndarray:
        """Map target-normalised inputs ``[n, 2 + d]`` to the meta task's normalisation."""
        out = np.array(x, dtype=np.float64, copy=True)
        out[:, :2] = out[:, :2] * self.input_scale + self.input_offset
        return out

    def to_target(self, x: np.ndarray) -> np.ndarray:
        """The exact inverse of `to_meta`."""
        out = np.array(x, dtype=np.float64, copy=True)
        out[:, :2] = (out[:, :2] - self.input_offset) / self.input_scale
        return out

    @overload
    def output(self, mean: np.ndarray, var: None = None) -> np.ndarray: ...

    @overload
    def output(self, mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def output(
        self, mean: np.ndarray, var: np.ndarray | None = None
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Meta-standardised predictions expressed on the target's scale (and variances)."""
        scaled = mean * self.output_scale + self.output_offset
        return scaled if var is None else (scaled, var * self.output_scale**2)


def window_scaling(
    norm: MetaNormaliser,
    time: np.ndarray,
    reward: np.ndarray,
    y: np.ndarray,
    t_low: float,
    t_high: float,
) -> TaskScaling:
    """Scaling for a target window ``[t_low, t_high]`` (raw steps).

    The matching window holds the meta rows with ``t_low <= time <= t_high``. Where none do
    (a different interval or budget than the meta-data), the rows at the meta time nearest to
    the window are used instead of failing as the reference did (weakness 8).
    """
    inside = (time >= t_low) & (time <= t_high)
    if not inside.any():
        nearest = time[np.argmin(np.minimum(np.abs(time - t_low), np.abs(time - t_high)))]
        inside = time == nearest
    ctx = np.column_stack([time, reward])[inside]
    w_min, w_max = ctx.min(0), ctx.max(0)
    full = norm.context_max - norm.context_min + _EPS
    window_std = float(y[inside].std() + _EPS)
    return TaskScaling(
        input_scale=(w_max - w_min + _EPS) / full,
        input_offset=(w_min - norm.context_min) / full,
        output_scale=norm.y_std / window_std,
        output_offset=(norm.y_mean - float(y[inside].mean())) / window_std,
    )

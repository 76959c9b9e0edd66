"""Patience: a clone keeps its donor's configuration while the donor is still improving.

FIRE-PBT's observation (Dalibard & Jaderberg, 2021), and the "greedy or not" question of
Chebykin et al. (2022): replacing a configuration that is still climbing with a new one throws
away the climb. A patient explorer wraps any other: when a member clones a donor whose reward
has risen over the last ``window`` sync points by more than ``tolerance`` times the spread of
every reward recorded so far, the clone keeps the donor's configuration (the exploit still
copies the donor's weights); otherwise the wrapped explorer chooses as usual.

A donor with fewer than ``window + 1`` recorded rewards has not had time to stall and counts as
improving, so a patient population from a portfolio holds its start for the first ``window``
sync points. The rule (`still_improving`) is a pure function of the donor's rewards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from metapbt.errors import ConfigError
from metapbt.population.explorers.base import Explorer, ExploreRequest, RoundContext
from metapbt.population.space import Config, SearchSpace


@dataclass(frozen=True)
class PatienceSettings:
    """When a donor counts as still improving.

    The defaults were chosen on `benchmarks/explore_quality.py` (`benchmarks/patience_grid.sh`,
    20 seeds): among the settings that keep a good start, the best mean final score on the rising
    and moving problems (0.954 against 0.953 for window 1, tolerance 0.05; PB2* alone: 1.433).

    Args:
        window: Sync points the donor's rise is measured over (at least 1).
        tolerance: The rise must exceed this fraction of the spread (max - min) of every
            finite reward recorded so far (>= 0; 0: any rise).
    """

    window: int = 2
    tolerance: float = 0.1

    def __post_init__(self) -> None:
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ConfigError(f"patience window must be an int >= 1, got {self.window!r}")
        if not (math.isfinite(self.tolerance) and self.tolerance >= 0):
            raise ConfigError(f"patience tolerance must be finite and >= 0, got {self.tolerance}")


def still_improving(donor_rewards: np.ndarray, spread: float, settings: PatienceSettings) -> bool:
    """Whether a donor whose rewards so far are ``donor_rewards`` (oldest first) still climbs.

    True when there are fewer than ``window + 1`` rewards, or the reward ``window`` sync points
    ago is not finite (a diverged past says nothing about the present); otherwise the latest
    reward must exceed that one by more than ``tolerance * spread``.
    """
    rewards = np.asarray(donor_rewards, dtype=float)
    if rewards.size < settings.window + 1:
        return True
    now, then = float(rewards[-1]), float(rewards[-1 - settings.window])
    if not math.isfinite(then):
        return True
    if not math.isfinite(now):  # never for a donor (a diverged member is never one)
        return False
    return now - then > settings.tolerance * max(float(spread), 0.0)


@dataclass
class PatientExplorer(Explorer):
    """Any explorer, made patient: a clone of a still-improving donor keeps its configuration.

    Args:
        inner: The explorer that chooses when the donor has stalled.
        settings: When a donor counts as still improving.

    Attributes:
        kept: One ``{"step", "member", "donor"}`` per clone that kept its donor's configuration
            (saved with the explorer's state).
    """

    inner: Explorer
    settings: PatienceSettings = PatienceSettings()
    kept: list[dict[str, int]] = field(default_factory=list)

    # The wrapped explorer decides (a class constant on every other explorer).
    @property
    def handles_categorical(self) -> bool:  # type: ignore[override]  # noqa: D102
        return self.inner.handles_categorical

    @property
    def models_numbers(self) -> bool:  # type: ignore[override]  # noqa: D102
        return self.inner.models_numbers

    def initial(self, space: SearchSpace, size: int) -> list[Config] | None:  # noqa: D102
        return self.inner.initial(space, size)

    def begin_round(self, context: RoundContext, rng: np.random.Generator) -> None:  # noqa: D102
        self.inner.begin_round(context, rng)

    def retune(  # noqa: D102
        self, context: RoundContext, member: int, config: Config, rng: np.random.Generator
    ) -> Config:
        return self.inner.retune(context, member, config, rng)

    def explore(  # noqa: D102
        self, context: RoundContext, request: ExploreRequest, rng: np.random.Generator
    ) -> Config:
        frame = context.history.to_frame()
        rewards = frame.loc[frame["member"] == request.donor].sort_values("step")["reward"]
        finite = frame["reward"][np.isfinite(frame["reward"])]
        spread = float(finite.max() - finite.min()) if len(finite) else 0.0
        if still_improving(rewards.to_numpy(), spread, self.settings):
            self.kept.append(
                {"step": int(context.step), "member": request.member, "donor": request.donor}
            )
            return dict(request.donor_config)
        return self.inner.explore(context, request, rng)

    def state_dict(self) -> dict[str, Any]:  # noqa: D102
        return {"inner": self.inner.state_dict(), "kept": [dict(k) for k in self.kept]}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: D102
        self.inner.load_state_dict(state["inner"])
        self.kept = [dict(k) for k in state["kept"]]

"""The ask/tell core: a population of hyperparameter configurations, driven by any loop."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from metapbt.errors import ConfigError, PopulationStateError
from metapbt.population import methods
from metapbt.population.decisions import Clone, Decision, Keep
from metapbt.population.explorers.base import ExploreRequest, RoundContext
from metapbt.population.history import NO_SOURCE, History
from metapbt.population.initializers import Initializer, RandomInitializer
from metapbt.population.space import Config, SearchSpace

logger = logging.getLogger(__name__)
STATE_VERSION = 1


class Population:
    """Population-based hyperparameter optimisation as ask/tell.

    ``ask()`` returns every member's current hyperparameters; ``tell(step, rewards)`` records
    the rewards of a sync point and returns one [`Keep`][metapbt.population.decisions.Keep] or
    [`Clone`][metapbt.population.decisions.Clone] per member. The caller applies the decisions (copy
    the donor's weights and optimiser state, set the new hyperparameters) and trains until the next
    sync point. Nothing here knows about training.

    Args:
        space: The tuned hyperparameters.
        size: Number of members ``N`` (at least 1).
        method: A registered method name (see
            [`metapbt.population.methods`][metapbt.population.methods]) or a
            [`Method`][metapbt.population.methods.Method].
        seed: Seed of the population's ``numpy`` generator (initial draws, donors, explores).
        quantile: Truncation-selection quantile, in (0, 0.5].
        initializer: Initial configurations; independent random draws by default.

    Examples:
        ```python
        pop = Population(default_space(), size=4, method="pb2-star", seed=0)
        configs = pop.ask()
        decisions = pop.tell(step=40_000, rewards=[10.0, 50.0, 20.0, 35.0])
        ```
    """

    def __init__(
        self,
        space: SearchSpace,
        size: int,
        method: str | methods.Method = "pb2-star",
        seed: int = 0,
        *,
        quantile: float = 0.25,
        initializer: Initializer | None = None,
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"size must be a positive int, got {size!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"seed must be an int, got {seed!r}")
        self.space = space
        self.size = size
        self.method = methods.make(method, quantile) if isinstance(method, str) else method
        if space.categorical_names and not self.method.explorer.handles_categorical:
            raise ConfigError(
                f"the {self.method.name} method models numeric parameters only, but "
                f"{space.categorical_names} are categorical: use random, pbt, pb2-mix, "
                "meta-prior or taf with categorical parameters"
            )
        if self.method.explorer.models_numbers and len(space.categorical_names) == space.dim:
            raise ConfigError(  # found by the property tests: it failed at the first explore
                f"the {self.method.name} method models the numeric parameters, but every one of "
                f"{space.names} is categorical: use random or pbt, or add a numeric parameter"
            )
        self._rng = np.random.default_rng(seed)
        own = self.method.explorer.initial(space, size)
        if own is not None and initializer is not None:
            raise ConfigError(
                f"the {self.method.name} method chooses every member's start itself; "
                "drop the initializer (CLI and study files: portfolio, init_ranges; Ray Tune "
                "samples every trial's start, so MetaPB2 cannot run this method)"
            )
        initial = (
            own
            if own is not None
            else (initializer or RandomInitializer()).initial(space, size, self._rng)
        )
        if len(initial) != size:
            raise ConfigError(f"initializer returned {len(initial)} configs for {size} members")
        self._configs = [space.validate(c) for c in initial]
        self.history = History(space)
        self._last_step: int | None = None
        # Asynchronous tells (tell_member): every member's latest reward and step.
        self._latest: np.ndarray | None = None
        self._member_steps: list[int | None] = []

    @property
    def last_step(self) -> int | None:
        """The last sync point told, or ``None`` before the first."""
        return self._last_step

    def ask(self) -> list[Config]:
        """Current hyperparameters of every member (copies; mutating them changes nothing)."""
        return [dict(c) for c in self._configs]

    def tell(self, step: int, rewards: Sequence[float | None] | np.ndarray) -> list[Decision]:
        """Record the rewards of sync point ``step`` and decide, for every member, what next.

        Args:
            step: The sync point, strictly greater than the previous one.
            rewards: One score per member, higher is better; ``None`` or NaN marks a member
                whose evaluation failed (it ranks last, is replaced if possible, never a donor).

        Returns:
            One decision per member, in member order.

        Raises:
            PopulationStateError: If ``step`` does not increase.
            ConfigError: If the number of rewards is not the population size.
        """
        if self._latest is not None:
            raise PopulationStateError("this population is told asynchronously (tell_member)")
        if self._last_step is not None and step <= self._last_step:
            raise PopulationStateError(
                f"sync points must increase: got step {step} after {self._last_step}"
            )
        if len(rewards) != self.size:
            raise ConfigError(f"expected {self.size} rewards, got {len(rewards)}")
        scores = np.array([math.nan if r is None else float(r) for r in rewards])
        donors = self.method.exploit.select(scores, self._rng)
        sources = [donors.get(m, NO_SOURCE) for m in range(self.size)]
        self.history.add_round(step, self._configs, scores, sources)
        self._last_step = int(step)
        context = RoundContext(self.space, self.history, int(step), scores, self.size)
        if donors:
            self._explore(context, donors)
        self._retune(context, [m for m in range(self.size) if m not in donors])
        decisions: list[Decision] = [
            Clone(m, donors[m], dict(self._configs[m]))
            if m in donors
            else Keep(m, dict(self._configs[m]))
            for m in range(self.size)
        ]
        best = np.nanmax(scores) if np.isfinite(scores).any() else math.nan
        logger.info("step %d: best reward %.4g, %d clone(s)", step, best, len(donors))
        return decisions

    def tell_member(self, member: int, step: int, reward: float | None) -> Decision:
        """Asynchronous tell: one member reports its reward at its own sync point ``step``.

        The member is ranked against every member's latest reward (members that have not
        reported yet count as failed: last, never donors); if the exploit rule clones it, its
        donor and new hyperparameters are chosen as in
        [`tell`][metapbt.population.population.Population.tell], and only its decision is returned.
        This is Ray Tune's asynchronous PBT protocol; the history holds one row per report, so
        members' rows are at different steps. A cloned member continues from its donor's weights and
        step: its next report must come after the donor's latest one (it may be before its own).

        Raises:
            PopulationStateError: If ``step`` does not exceed this member's previous report
                (its donor's, after a clone), or the population was told synchronously before.
            ConfigError: If ``member`` is not a member index.
        """
        if not 0 <= member < self.size:
            raise ConfigError(f"member {member} is not in 0..{self.size - 1}")
        if self._latest is None:
            if self._last_step is not None:
                raise PopulationStateError("this population was told synchronously (tell)")
            self._latest = np.full(self.size, math.nan)
            self._member_steps = [None] * self.size
        previous = self._member_steps[member]
        if previous is not None and step <= previous:
            raise PopulationStateError(
                f"member {member}'s sync points must increase: got step {step} after {previous}"
            )
        self._latest[member] = math.nan if reward is None else float(reward)
        self._member_steps[member] = int(step)
        scores = self._latest.copy()
        donors = self.method.exploit.select(scores, self._rng)
        donor = donors.get(member)
        config = dict(self._configs[member])
        self.history.add_rows(
            step, [member], [config], [scores[member]], [NO_SOURCE if donor is None else donor]
        )
        context = RoundContext(self.space, self.history, int(step), scores, self.size)
        if donor is None:
            self._retune(context, [member])
            return Keep(member, dict(self._configs[member]))
        self._explore(context, {member: donor})
        # It continues from the donor's weights, so from the donor's step: its next report
        # must come after that one (a Ray trial is rewound to its donor's checkpoint).
        self._member_steps[member] = self._member_steps[donor]
        return Clone(member, donor, dict(self._configs[member]))

    def _explore(self, context: RoundContext, donors: dict[int, int]) -> None:
        explorer = self.method.explorer
        explorer.begin_round(context, self._rng)
        old = [dict(c) for c in self._configs]
        pending: list[Config] = []
        for member in sorted(donors):
            donor = donors[member]
            request = ExploreRequest(
                member, donor, old[donor], float(context.rewards[donor]), tuple(pending)
            )
            new = self._checked(explorer.explore(context, request, self._rng))
            pending.append(new)
            self._configs[member] = new

    def _retune(self, context: RoundContext, kept: list[int]) -> None:
        explorer = self.method.explorer
        for member in kept:
            config = dict(self._configs[member])
            self._configs[member] = self._checked(
                explorer.retune(context, member, config, self._rng)
            )

    def _checked(self, config: Mapping[str, Any]) -> Config:
        """``config`` validated against the space: an explorer's output, so a bad one is its bug."""
        try:
            return self.space.validate(config)
        except ConfigError as err:
            name = type(self.method.explorer).__name__
            raise ConfigError(f"explorer {name} broke its contract: {err}") from err

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: configs, history, generator and explorer state.

        The result is JSON-serialisable.
        """
        return {
            "version": STATE_VERSION,
            "method": self.method.name,
            "space": self.space.to_dict(),
            "configs": self.ask(),
            "last_step": self._last_step,
            "rng": self._rng.bit_generator.state,
            "history": self.history.to_frame().to_dict(orient="list"),
            "explorer": self.method.explorer.state_dict(),
            "latest": None if self._latest is None else _nan_to_none(self._latest),
            "member_steps": self._member_steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore [`state_dict`][metapbt.population.population.Population.state_dict] output.

        The population must be built with the same arguments.

        Raises:
            ConfigError: If the state belongs to another method, space or population size.
        """
        if state.get("version") != STATE_VERSION:
            raise ConfigError(f"unsupported population state version {state.get('version')!r}")
        if state["method"] != self.method.name:
            raise ConfigError(
                f"state is for method {state['method']!r}, this population runs "
                f"{self.method.name!r}"
            )
        if SearchSpace.from_dict(state["space"]) != self.space:
            raise ConfigError("state's search space differs from this population's")
        if len(state["configs"]) != self.size:
            raise ConfigError(
                f"state has {len(state['configs'])} members, this population {self.size}"
            )
        self._configs = [self.space.validate(c) for c in state["configs"]]
        self._last_step = state["last_step"]
        self._rng.bit_generator.state = state["rng"]
        self.history = History.from_frame(pd.DataFrame(state["history"]), self.space)
        self.method.explorer.load_state_dict(state["explorer"])
        latest = state.get("latest")  # absent in states written before tell_member existed
        self._latest = None if latest is None else np.array(latest, dtype=float)
        self._member_steps = list(state.get("member_steps") or [])


def _nan_to_none(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values]

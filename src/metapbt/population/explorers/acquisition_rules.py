"""Acquisition rules of the PB2 family: which acquisition pytree each round maximises.

A rule reads the round's `RoundModel` and returns an acquisition from
`metapbt.surrogates.acquisition`; the explorer maximises it over the unit cube.

* `UCBRule`: PB2's UCB with ``kappa = sqrt(c1 + max(0, ln(c2 * n)))``, ``n`` the rows the
  model conditions on; adding the standard deviation (PB2*) or the variance (Ray's PB2);
* `TAFRule`: TAF-PB2's transfer acquisition (the target's EI plus the RGPE-weighted
  predicted improvements of the meta tasks), UCB while the target has few rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import jax.numpy as jnp
import numpy as np

from metapbt.errors import ConfigError
from metapbt.population.explorers.base import RoundContext
from metapbt.population.explorers.meta_models import MetaModels
from metapbt.population.explorers.models import RoundModel
from metapbt.surrogates.acquisition import UCB, Acquisition, TransferAcquisition, ucb_kappa
from metapbt.surrogates.transfer import MetaTerms, padded_meta_means


class AcquisitionRule(ABC):
    """Builds the acquisition of each explore from the round's model."""

    def prepare(  # noqa: B027
        self, model: RoundModel, context: RoundContext, rng: np.random.Generator
    ) -> None:
        """Once per round, after the model is fitted (no-op by default)."""

    @abstractmethod
    def build(self, model: RoundModel, pending_x: np.ndarray) -> Acquisition:
        """The acquisition for one explore (``pending_x [p, D]``: this round's earlier picks)."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (empty by default)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027
        """Restore `state_dict` output (no-op by default)."""


@dataclass(frozen=True)
class UCBRule(AcquisitionRule):
    """UCB with PB2's growing ``kappa``.

    Args:
        std: Add ``kappa * std`` (PB2*); ``False`` adds ``kappa * variance`` as Ray's PB2 does.
        exploration: ``c1`` in ``kappa = sqrt(c1 + max(0, ln(c2 * n)))``.
        growth: ``c2`` in the same formula.
    """

    std: bool = True
    exploration: float = 0.2
    growth: float = 0.4

    def __post_init__(self) -> None:
        if self.exploration < 0 or self.growth <= 0:
            raise ConfigError(
                f"need exploration >= 0 and growth > 0, got {self.exploration}, {self.growth}"
            )

    def build(self, model: RoundModel, pending_x: np.ndarray) -> Acquisition:  # noqa: D102
        return UCB.of(ucb_kappa(model.rows, self.exploration, self.growth), self.std)


@dataclass
class TAFRule(AcquisitionRule):
    """TAF-PB2: ``w_t * EI + sum_i w_i * max(0, mean_i - best_i)``; UCB before ``min_rows``.

    The target's weight comes from closed-form leave-one-out predictions of its GP (one
    Cholesky) instead of ``n`` refits per explore.
    """

    meta: MetaModels
    min_rows: int = 3
    fallback: UCBRule = field(default_factory=UCBRule)
    _terms: MetaTerms | None = field(default=None, init=False, repr=False)
    _target_weight: float = field(default=1.0, init=False, repr=False)

    def prepare(  # noqa: D102
        self, model: RoundModel, context: RoundContext, rng: np.random.Generator
    ) -> None:
        self._terms = None
        train = model.train
        if len(train.y) <= self.min_rows:
            return
        loo = model.posterior.gp.loo_means()
        w, _, scalings = self.meta.task_weights(context, train, rng, loo=loo)
        self._terms = self.meta.terms(w[:-1], scalings)
        self._target_weight = float(w[-1])

    def build(self, model: RoundModel, pending_x: np.ndarray) -> Acquisition:  # noqa: D102
        if self._terms is None:
            return self.fallback.build(model, pending_x)
        rows = np.concatenate([model.train.x, pending_x])
        meta_best = padded_meta_means(self._terms, rows).max(axis=1)
        return TransferAcquisition(
            best=jnp.asarray(model.train.y.max(), jnp.float32),
            target_weight=jnp.asarray(self._target_weight, jnp.float32),
            meta=self._terms,
            meta_best=jnp.asarray(meta_best, jnp.float32),
        )

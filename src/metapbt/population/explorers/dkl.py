"""The deep-kernel surrogate of ``dkl`` and ``meta-dkl`` (after metaPBT).

The GP's kernel is a `DeepKernel`, trained by Adam on the
marginal likelihood with early stopping (`fit_dkl`). By default
every round first fits PB2*'s GP on the same rows and starts the deep kernel from it (its
variance, forgetting rate, noise and raw-input lengthscale; the features switched off), so the
fit departs from PB2*'s model only where held-out likelihood says it should.

* ``dkl`` fits on the target run's rows, each round starting from the previous round's fit.
* ``meta-dkl`` first pre-trains network and kernel on the pooled rows of the other tasks'
  meta-data (from [`load`][metapbt.metadata.source.MetaSource.load]: target left out, each task
  normalised over its whole run), once per run and cached; every round then fine-tunes a copy
  of the pre-trained state on the target's rows. The target's ``(t, r)`` are scaled by the
  meta tasks' mean full-run ranges, the scale the network was pre-trained on (scaling them by
  the target's own window, as ``dkl`` does, fed the network rewards on another scale early in
  a run).

Deliberate differences from the metaPBT reference: the target context is held out by its
physical context values (the reference matched directory names by substring and always included
the target's own context); meta rows are PB2 rows with PB2's definition (reward change per step
over a segment, reward before) rather than per-iteration differences min-max scaled per trial;
pre-training is really used and the model persists (the reference trained a fresh network at
every explore step on meta and target rows pooled together, which swamped the target's few rows).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np

from metapbt.errors import ConfigError, SurrogateError
from metapbt.metadata.source import MetaSource
from metapbt.population.explorers.base import RoundContext
from metapbt.population.explorers.models import RoundModel, Surrogate
from metapbt.population.explorers.training import TrainingSet
from metapbt.surrogates import ExactGP, FittedGP, TimeVaryingSE
from metapbt.surrogates.dkl import DKLSettings, fit_dkl, pooled_rows
from metapbt.surrogates.posterior import Posterior

logger = logging.getLogger(__name__)


class DeepKernelSurrogate(Surrogate):
    """A deep-kernel GP; with a ``source``, pre-trained on its meta-data (Meta-DKL).

    Args:
        dkl: Network size and training budget of every round's fit.
        source: Meta-data to pre-train on (``None``: plain DKL).
        pretrain: Training budget of the one pre-training fit (default: ``dkl``'s network,
            600 steps, patience 100, 10 % held out, no prior on the weights: hundreds of rows
            need none).
        pretrain_rows: Most meta rows pre-trained on (a uniform subsample of the pool). Exact
            GP training is cubic in the rows; with 256 the one-off pre-training costs under a
            second on 2 CPU cores (``benchmarks/dkl_explore.py``), against a 15 s run.
        log_space: Model log-scaled parameters in log space (as the target's rows are).

    Attributes:
        pretrained_on: The meta tasks pre-trained on (empty until the first fit).
    """

    def __init__(
        self,
        dkl: DKLSettings | None = None,
        source: MetaSource | None = None,
        pretrain: DKLSettings | None = None,
        pretrain_rows: int = 256,
        log_space: bool = True,
    ) -> None:
        super().__init__()
        self.dkl = dkl or DKLSettings()
        self.pretrain = pretrain or replace(
            self.dkl, steps=600, patience=100, val_fraction=0.1, prior_std=None
        )
        if (self.dkl.hidden, self.dkl.features) != (self.pretrain.hidden, self.pretrain.features):
            raise ConfigError("pre-training and fine-tuning need the same network size")
        self.source = source
        self.pretrain_rows = pretrain_rows
        self.log_space = log_space
        self.pretrained_on: list[str] = []
        self._models: dict[int, ExactGP] = {}
        self._plain = ExactGP(TimeVaryingSE())  # PB2*'s GP, for variance="plain"
        self._pretrained: dict[str, Any] | None = None
        self._meta_ranges: tuple[tuple[float, float], tuple[float, float]] | None = None

    @property
    def name(self) -> str:
        """``"meta-dkl"`` with a meta-data source, else ``"dkl"``."""
        return "dkl" if self.source is None else "meta-dkl"

    def state_dict(self) -> dict[str, Any]:  # noqa: D102
        return {**super().state_dict(), "pretrained_on": self.pretrained_on}

    def _model(self, inputs: int) -> ExactGP:
        if inputs not in self._models:
            self._models[inputs] = self.dkl.model(inputs)
        return self._models[inputs]

    def fit(  # noqa: D102
        self, context: RoundContext, train: TrainingSet, rng: np.random.Generator
    ) -> RoundModel | None:
        model = self._model(train.x.shape[1] - 1)
        start: dict[str, Any] | None
        if self.source is not None:
            start = dict(self._pretrained_state(context, model))
            anchor = np.asarray(start["net"])
            assert self._meta_ranges is not None
            train = train.rescaled(*self._meta_ranges)
        else:
            start = self.warm.get(self.name) if self.dkl.warm_network else None
            anchor = np.asarray(model.kernel.inits[0]["net"])
        plain = None
        if self.dkl.variance == "plain" or self.dkl.start_from_gp:
            plain = self.fit_gp(self._plain, train.x, train.y, context, "plain")
            if plain is None:
                return None
        if self.dkl.start_from_gp:
            assert plain is not None
            start = {**(start or model.kernel.inits[0]), **_base_of(plain)}
        try:
            fit = fit_dkl(
                model,
                train.x,
                train.y,
                self.dkl,
                rng,
                start=start,
                reserve=context.size,
                anchor=anchor,
            )
        except SurrogateError as err:
            logger.warning("step %d: %s; this round's explores draw at random", context.step, err)
            return None
        if self.source is None:  # dkl starts each round from its last fit (network included)
            self.warm[self.name] = {k: np.asarray(v).tolist() for k, v in fit.params.items()}
        base = {k: float(v) for k, v in fit.params.items() if k != "net"}
        self.log_fit(context, len(train.y), self.name, {"best_step": float(fit.best_step), **base})
        variance_gp = plain if self.dkl.variance == "plain" else None
        return RoundModel(Posterior.of(fit.gp, variance_gp=variance_gp), train, len(train.y))

    def _pretrained_state(self, context: RoundContext, model: ExactGP) -> dict[str, Any]:
        """Pre-train on the meta-data once per run (cached)."""
        if self._pretrained is not None:
            return self._pretrained
        assert self.source is not None
        tasks = self.source.load(context.space.to_dict())
        blocks = [t.rows(context.space, self.log_space) for t in tasks]
        lows = np.mean([t.norm.context_min for t in tasks], axis=0)
        highs = np.mean([t.norm.context_max for t in tasks], axis=0)
        self._meta_ranges = ((lows[0], highs[0]), (lows[1], highs[1]))
        rng = np.random.default_rng(0)
        x, y = pooled_rows(blocks, self.pretrain_rows, rng)
        try:
            fit = fit_dkl(model, x, y, self.pretrain, rng)
        except SurrogateError as err:
            raise ConfigError(f"pre-training on {self.source.where} failed: {err}") from None
        self._pretrained = {k: np.asarray(v) for k, v in fit.params.items()}
        self.pretrained_on = [t.task.task for t in tasks]
        logger.info(
            "pre-trained the deep kernel on %d rows of %d tasks (best step %d)",
            len(y),
            len(tasks),
            fit.best_step,
        )
        return self._pretrained


def _base_of(plain: FittedGP) -> dict[str, float]:
    """A PB2* fit's hyperparameters as the deep kernel's time, raw-input and noise terms."""
    p = plain.hyperparameters()
    return {
        "variance": p["variance"],
        "epsilon": p["epsilon"],
        "noise": p["noise"],
        "raw_lengthscale": p["lengthscale"],
    }

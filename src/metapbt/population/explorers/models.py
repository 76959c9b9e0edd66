"""Surrogates of the PB2 family: what is fitted each round, ending in a posterior.

A `Surrogate` turns the round's `TrainingSet` into a
`RoundModel` (a `Posterior` plus what the query
needs), or ``None`` when no model could be fitted (the round's clones then draw at random).

* `GPSurrogate`: an exact GP with the time-varying kernel (PB2, PB2*, TAF);
* `MetaPriorSurrogate`: a GP on the standardised residual of the RGPE-weighted meta prior
  mean (MetaPrior-PB2);
* `MultiTaskSurrogate`: a multi-task GP over the target and its heaviest meta tasks
  (MultiTask-PB2);
* `DeepKernelSurrogate`: a deep-kernel GP (``dkl``, ``meta-dkl``).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

import jax.numpy as jnp
import numpy as np

from metapbt.errors import ConfigError, SurrogateError
from metapbt.population.explorers.base import RoundContext
from metapbt.population.explorers.meta_models import MetaModels
from metapbt.population.explorers.training import TrainingSet
from metapbt.surrogates import (
    ExactGP,
    FittedGP,
    MultiTaskKernel,
    TimeVaryingMixture,
    TimeVaryingSE,
)
from metapbt.surrogates.posterior import Posterior

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundModel:
    """One sync point's model.

    Attributes:
        posterior: What the acquisition reads.
        train: The target's normalised rows (and their scaling, for the query point).
        rows: Rows the model conditions on (UCB's ``kappa`` counts them).
        prefix: Leading input columns before ``(t, r)`` (the task index of a multi-task GP).
    """

    posterior: Posterior
    train: TrainingSet
    rows: int
    prefix: tuple[float, ...] = ()

    def query(
        self,
        step: float,
        donor: int,
        donor_reward: float,
        mode: Literal["donor_last_row", "donor_now"],
    ) -> np.ndarray:
        """The fixed leading columns of a new point (prefix, then ``(t, r)``)."""
        return np.concatenate([self.prefix, self.train.query(step, donor, donor_reward, mode)])


class Surrogate(ABC):
    """Fits one model per sync point; keeps warm starts and a log of its fits."""

    def __init__(self) -> None:
        self.fits: list[dict[str, Any]] = []
        self.warm: dict[str, dict[str, Any]] = {}

    @abstractmethod
    def fit(
        self, context: RoundContext, train: TrainingSet, rng: np.random.Generator
    ) -> RoundModel | None:
        """This round's model, or ``None`` if it could not be fitted."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state: warm starts and the fit log."""
        return {"warm_start": self.warm, "fits": list(self.fits)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict` output."""
        self.warm = dict(state["warm_start"] or {})
        self.fits = list(state["fits"])

    def fit_gp(
        self,
        model: ExactGP,
        x: np.ndarray,
        y: np.ndarray,
        context: RoundContext,
        name: str,
        clip_lengthscale: tuple[float, float] | None = None,
        min_rows: int = 0,
    ) -> FittedGP | None:
        """Fit ``model`` (the fixed starts plus the last fit named ``name``); log it.

        ``clip_lengthscale`` clips the fitted lengthscale into a range and re-conditions, as
        Ray's PB2 does with its free kernel; ``min_rows`` is passed to
        `fit`. Returns ``None`` if the fit failed.
        """
        try:
            gp = model.fit(
                x, y, reserve=context.size, warm_start=self.warm.get(name), min_rows=min_rows
            )
        except SurrogateError as err:
            logger.warning("step %d: %s; this round's explores draw at random", context.step, err)
            return None
        if clip_lengthscale is not None:
            params = dict(gp.params)
            params["lengthscale"] = jnp.clip(params["lengthscale"], *clip_lengthscale)
            gp = model.condition(params, gp.x, gp.y, gp.mask)
        self.warm[name] = gp.hyperparameters()
        self.log_fit(context, len(y), name, self.warm[name])
        return gp

    def log_fit(self, context: RoundContext, rows: int, name: str, values: dict[str, Any]) -> None:
        """Record one fit in `fits`."""
        self.fits.append(
            {"step": float(context.step), "rows": float(rows), "model": name, **values}
        )
        logger.debug("step %d: %s model on %d rows: %s", context.step, name, rows, values)


STOCK_LENGTHSCALE_RANGE = (1e-5, 1.0)


class GPSurrogate(Surrogate):
    """An exact GP on the target's rows.

    Args:
        kernel: The kernel (PB2*'s bounded time-varying SE by default).
        clip_lengthscale: Clip the fitted lengthscale into this range (stock PB2's free kernel).
    """

    def __init__(
        self,
        kernel: TimeVaryingSE | None = None,
        clip_lengthscale: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        self.model = ExactGP(kernel or TimeVaryingSE())
        self.clip_lengthscale = clip_lengthscale
        self._mixed: dict[int, ExactGP] = {}

    def fit(  # noqa: D102
        self, context: RoundContext, train: TrainingSet, rng: np.random.Generator
    ) -> RoundModel | None:
        model = self.model_for(train)
        gp = self.fit_gp(model, train.x, train.y, context, "target", self.clip_lengthscale)
        return None if gp is None else RoundModel(Posterior.of(gp), train, len(train.y))

    def model_for(self, train: TrainingSet) -> ExactGP:
        """The GP for ``train``: this surrogate's, or PB2-Mix's mixture kernel over categories.

        Rows with categorical inputs (PB2-Mix) get `TimeVaryingMixture` with the kernel's own
        bounds, built once per number of categories.
        """
        if train.categorical == 0:
            return self.model
        if train.categorical not in self._mixed:
            base = self.model.kernel
            if not isinstance(base, TimeVaryingSE):
                raise ConfigError(f"{type(base).__name__} has no mixture with categories")
            kernel = TimeVaryingMixture(
                train.categorical, base.variance, base.lengthscale, base.epsilon
            )
            self._mixed[train.categorical] = ExactGP(kernel)
        return self._mixed[train.categorical]


@dataclass
class MetaPriorSurrogate(GPSurrogate):
    """MetaPrior-PB2: a GP on the standardised residual of the weighted meta prior mean.

    While the target has at most ``min_rows`` rows it is a plain GP (PB2*).
    """

    meta: MetaModels
    min_rows: int = 3

    def __post_init__(self) -> None:
        super().__init__()

    def fit(  # noqa: D102
        self, context: RoundContext, train: TrainingSet, rng: np.random.Generator
    ) -> RoundModel | None:
        if len(train.y) <= self.min_rows:
            return super().fit(context, train, rng)
        w, preds, scalings = self.meta.task_weights(context, train, rng)
        residual = train.y - w @ preds
        offset, scale = float(residual.mean()), float(residual.std() + 1e-8)
        model = self.model_for(train)  # PB2-Mix's mixture kernel on a mixed space
        gp = self.fit_gp(model, train.x, (residual - offset) / scale, context, "residual")
        if gp is None:
            return None
        prior = self.meta.terms(w, scalings)
        return RoundModel(Posterior.of(gp, scale, offset, prior), train, len(train.y))


@dataclass
class MultiTaskSurrogate(GPSurrogate):
    """MultiTask-PB2: an ICM multi-task GP over the target and its ``top_k`` heaviest meta tasks.

    Each selected task contributes ``points`` rows centred on the current time, mapped to the
    target's scale. Active once the target's window spans two distinct times (a plain GP
    before). UCB's ``kappa`` counts every row of the multi-task model, as the reference does.

    Args:
        meta: The meta tasks.
        top_k: Most meta tasks in the model.
        points: Rows per meta task.
        cold_iterations: L-BFGS iterations of the first multi-task GP fit.
        warm_iterations: L-BFGS iterations of later fits (warm-started).
    """

    meta: MetaModels
    top_k: int = 4
    points: int = 100
    cold_iterations: int = 30
    warm_iterations: int = 5
    _models: dict[str, ExactGP] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        super().__init__()
        # The multi-task GP sees ~5x the target's rows and its fit dominates the explore step:
        # one start, a full fit the first time, then a few iterations from the previous
        # round's hyperparameters alone (they move little between rounds; in 36 warm rounds of
        # benchmarks/meta_explore.py's toy targets the fixed start, run for the same few
        # iterations, never fitted better, and dropping it halved the fit's time). Both
        # models have one start, so they share one compiled program.
        kernel = MultiTaskKernel(
            tasks=1 + self.top_k, base=TimeVaryingSE(starts=((1.0, 0.5, 0.1),))
        )
        self._models = {
            "cold": ExactGP(kernel, max_iter=self.cold_iterations, warm_only=True),
            "warm": ExactGP(kernel, max_iter=self.warm_iterations, warm_only=True),
        }

    def fit(  # noqa: D102
        self, context: RoundContext, train: TrainingSet, rng: np.random.Generator
    ) -> RoundModel | None:
        if train.t_range[1] <= train.t_range[0]:
            return super().fit(context, train, rng)
        w, _, scalings = self.meta.task_weights(context, train, rng)
        chosen = [i for i in np.argsort(-w, kind="stable")[: self.top_k] if w[i] > 0]
        xs = [np.column_stack([np.zeros(len(train.y)), train.x])]
        ys = [train.y]
        for slot, i in enumerate(chosen, start=1):
            x, y = self.meta.slice(i, context, self.points)
            xs.append(np.column_stack([np.full(len(y), slot), scalings[i].to_target(x)]))
            ys.append(scalings[i].output(y))
        model = self._models["warm" if "multitask" in self.warm else "cold"]
        x_all, y_all = np.concatenate(xs), np.concatenate(ys)
        # One padded size whatever the number of chosen tasks: one compiled program per run.
        size = self.top_k * self.points + len(train.y) + context.size
        gp = self.fit_gp(model, x_all, y_all, context, "multitask", min_rows=size)
        if gp is None:
            return None
        return RoundModel(Posterior.of(gp), train, len(y_all), prefix=(0.0,))

"""Meta-learned PB2 explorers: MetaPrior-PB2, MultiTask-PB2 and TAF-PB2.

Each is PB2* (:class:`PB2Explorer` with :func:`pb2_star` settings) with one piece replaced:
the surrogate (MetaPrior: a GP on the residual of a weighted meta prior; MultiTask: a multi-task
GP over the target and the closest tasks) or the acquisition (TAF). All weight the meta tasks by
RGPE ranking loss on the target's rows, recorded per round in :attr:`MetaPB2Explorer.weights`,
and fall back to PB2* while the target has too little data (reference spec 1.6-1.8).

Meta-task GPs are fitted once per run, on first use, never per round.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metapbt.errors import ConfigError, SurrogateError
from metapbt.metadata.rgpe import rgpe_weights
from metapbt.metadata.scaling import MetaNormaliser, TaskScaling, window_scaling
from metapbt.metadata.store import MetaStore, MetaTask
from metapbt.population.explorers.base import RoundContext
from metapbt.population.explorers.pb2 import PB2Explorer, RoundModel, TrainingSet, UCBArgs
from metapbt.population.explorers.transfer import MetaTerms, meta_means, meta_means_jit
from metapbt.surrogates import ExactGP, FittedGP, MultiTaskKernel, TimeVaryingSE
from metapbt.surrogates.acquisition import expected_improvement
from metapbt.surrogates.gp import bucket_size, predict

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetaSource:
    """Where the meta-data is, and which task is the target (left out by exact id).

    Args:
        store: A meta-data directory (:class:`~metapbt.metadata.store.MetaStore`).
        target_task: The target's task id, e.g. ``"cart_pole earth"``.
    """

    store: Path
    target_task: str


class MetaModels:
    """The meta tasks' pooled rows and GPs, loaded and fitted once."""

    def __init__(self, source: MetaSource) -> None:
        self.source = source
        self.tasks: list[MetaTask] = []
        self.norms: list[MetaNormaliser] = []
        self.gps: list[FittedGP] = []

    def ensure(self, context: RoundContext, log_space: bool) -> None:
        """Load the store (leaving the target out) and fit one GP per task, once."""
        if self.gps:
            return
        store = MetaStore(self.source.store)
        self.tasks = store.tasks(context.space.to_dict(), exclude=self.source.target_task)
        if not self.tasks:
            raise ConfigError(
                f"{self.source.store} holds no task other than the target "
                f"{self.source.target_task!r}"
            )
        model = ExactGP(TimeVaryingSE())
        kept, norms, gps = [], [], []
        for task in self.tasks:
            norm = MetaNormaliser.fit(task.time, task.reward_before, task.target)
            unit = context.space.columns_to_unit(task.hparams, log_space)
            try:
                gp = model.fit(
                    norm.inputs(task.time, task.reward_before, unit), norm.targets(task.target)
                )
            except SurrogateError as err:
                logger.warning("meta task %r left out: %s", task.task, err)
                continue
            kept.append(task)
            norms.append(norm)
            gps.append(gp)
        if not gps:
            raise ConfigError(f"no meta-task GP of {self.source.store} could be fitted")
        self.tasks, self.norms, self.gps = kept, norms, gps
        logger.info("fitted %d meta-task GPs from %s", len(self.gps), self.source.store)

    def scalings(self, train: TrainingSet) -> list[TaskScaling]:
        """Scaling of every task to the target's current window."""
        return [
            window_scaling(n, t.time, t.reward_before, t.target, *train.t_range)
            for n, t in zip(self.norms, self.tasks, strict=True)
        ]

    def terms(self, weights: np.ndarray, scalings: list[TaskScaling]) -> MetaTerms:
        """Pack the GPs with weights and scalings for compiled acquisitions."""
        return MetaTerms.build(self.gps, weights, scalings)

    def predictions(self, x: np.ndarray, scalings: list[TaskScaling]) -> np.ndarray:
        """``[M, n]`` target-scale means of every task at target-normalised ``x [n, D]``."""
        return padded_meta_means(self.terms(np.ones(len(self.gps)), scalings), x)


def padded_meta_means(terms: MetaTerms, x: np.ndarray) -> np.ndarray:
    """:func:`meta_means` at ``x [n, D]``, returning ``[M, n]``.

    The rows are padded to a bucket size, so a target that grows every round (and TAF's pending
    points) reuse the compiled program instead of recompiling it.
    """
    n = x.shape[0]
    padded = np.zeros((bucket_size(n), x.shape[1]), np.float32)
    padded[:n] = x
    return np.asarray(meta_means_jit(terms, jnp.asarray(padded)), np.float64)[:, :n]


@dataclass
class MetaPB2Explorer(PB2Explorer):
    """Shared scaffolding of the meta explorers (not registered itself).

    Args:
        source: The meta-data and the target's task id.
        samples: RGPE bootstrap samples.
        min_rows: The meta model is used once the target has more rows than this.

    Attributes:
        weights: One dict per round with a meta model: ``step`` and each task's weight (and
            ``target`` for TAF).
    """

    source: MetaSource | None = None
    samples: int = 100
    min_rows: int = 3
    weights: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.source is None:
            raise ConfigError(
                f"{type(self).__name__} needs meta-data: pass a MetaSource (CLI: --metadata)"
            )
        self.models = MetaModels(self.source)

    def state_dict(self) -> dict[str, Any]:
        """PB2's state plus the recorded task weights."""
        return {**super().state_dict(), "weights": list(self.weights)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        super().load_state_dict(state)
        self.weights = list(state["weights"])

    def task_weights(
        self,
        context: RoundContext,
        train: TrainingSet,
        rng: np.random.Generator,
        loo: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, list[TaskScaling]]:
        """RGPE weights (recorded), the meta predictions at the target rows, the scalings."""
        self.models.ensure(context, self.settings.log_space)
        scalings = self.models.scalings(train)
        preds = self.models.predictions(train.x, scalings)
        w = rgpe_weights(preds, train.y, rng, self.samples, loo=loo)
        row = {"step": float(context.step)}
        row.update({t.task: float(v) for t, v in zip(self.models.tasks, w, strict=False)})
        if loo is not None:
            row["target"] = float(w[-1])
        self.weights.append(row)
        return w, preds, scalings


@dataclass
class MetaPriorExplorer(MetaPB2Explorer):
    """MetaPrior-PB2: a GP on the standardised residual of the weighted meta prior mean."""

    def surrogate(  # noqa: D102
        self, context: RoundContext, train: TrainingSet, rng: np.random.Generator
    ) -> RoundModel | None:
        if len(train.y) <= self.min_rows:
            return super().surrogate(context, train, rng)
        w, preds, scalings = self.task_weights(context, train, rng)
        residual = train.y - w @ preds
        offset, scale = float(residual.mean()), float(residual.std() + 1e-8)
        gp = self.fit_gp(self._model, train.x, (residual - offset) / scale, context, "residual")
        if gp is None:
            return None
        return RoundModel(
            gp, train, scale=scale, offset=offset, prior=self.models.terms(w, scalings)
        )


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class TAFArgs:
    """Traced arguments of the TAF objective."""

    ucb: UCBArgs
    best: jax.Array
    target_weight: jax.Array
    meta: MetaTerms
    meta_best: jax.Array


def taf_objective(args: TAFArgs, u: jax.Array) -> jax.Array:
    """``w_t * EI(x) + sum_i w_i * max(0, mean_i(x) - best_i)`` at ``x = (fixed, u)``."""
    x = jnp.concatenate([args.ucb.fixed, u])[None, :]
    mean = predict(args.ucb.mean_gp, x)[0][0]
    var = predict(args.ucb.var_gp, x)[1][0]
    ei = expected_improvement(mean, var, args.best)
    gains = jnp.maximum(meta_means(args.meta, x)[:, 0] - args.meta_best, 0.0)
    return args.target_weight * ei + args.meta.weights @ gains


@dataclass
class TAFExplorer(MetaPB2Explorer):
    """TAF-PB2: the target GP's EI plus the meta models' weighted predicted improvements.

    The target's weight comes from closed-form leave-one-out predictions of its GP (one
    Cholesky) instead of ``n`` refits per explore.
    """

    def surrogate(  # noqa: D102
        self, context: RoundContext, train: TrainingSet, rng: np.random.Generator
    ) -> RoundModel | None:
        fitted = super().surrogate(context, train, rng)
        if fitted is None or len(train.y) <= self.min_rows:
            return fitted
        w, _, scalings = self.task_weights(context, train, rng, loo=fitted.gp.loo_means())
        fitted.meta = self.models.terms(w[:-1], scalings)
        fitted.target_weight = float(w[-1])
        return fitted

    def acquisition(  # noqa: D102
        self, fitted: RoundModel, fixed: np.ndarray, pending_x: np.ndarray
    ) -> tuple[Any, Any]:
        objective, ucb = super().acquisition(fitted, fixed, pending_x)
        if fitted.meta is None:
            return objective, ucb
        rows = np.concatenate([fitted.train.x, pending_x])
        meta_best = jnp.asarray(padded_meta_means(fitted.meta, rows).max(axis=1), jnp.float32)
        args = TAFArgs(
            ucb,
            jnp.asarray(fitted.train.y.max(), jnp.float32),
            jnp.asarray(fitted.target_weight, jnp.float32),
            fitted.meta,
            meta_best,
        )
        return taf_objective, args


@dataclass
class MultiTaskExplorer(MetaPB2Explorer):
    """MultiTask-PB2: a multi-task GP over the target and its ``top_k`` heaviest meta tasks.

    Each selected task contributes ``points`` rows centred on the current time, mapped to the
    target's scale. Active once the target's window spans two distinct times.

    Args:
        top_k: Most meta tasks in the model.
        points: Rows per meta task.
        cold_iterations: L-BFGS iterations of the first multi-task GP fit.
        warm_iterations: L-BFGS iterations of later fits (warm-started).
    """

    top_k: int = 4
    points: int = 100
    cold_iterations: int = 30
    warm_iterations: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        # The multi-task GP sees ~5x the target's rows and its fit dominates the explore step:
        # one start, a full fit the first time, then a few iterations warm-started from the
        # previous round's hyperparameters (which move little between rounds).
        kernel = MultiTaskKernel(
            tasks=1 + self.top_k, base=TimeVaryingSE(starts=((1.0, 0.5, 0.1),))
        )
        self._mt_cold = ExactGP(kernel, max_iter=self.cold_iterations)
        self._mt_warm = ExactGP(kernel, max_iter=self.warm_iterations)

    def surrogate(  # noqa: D102
        self, context: RoundContext, train: TrainingSet, rng: np.random.Generator
    ) -> RoundModel | None:
        if train.t_range[1] <= train.t_range[0]:
            return super().surrogate(context, train, rng)
        w, _, scalings = self.task_weights(context, train, rng)
        chosen = [i for i in np.argsort(-w, kind="stable")[: self.top_k] if w[i] > 0]
        xs = [np.column_stack([np.zeros(len(train.y)), train.x])]
        ys = [train.y]
        for slot, i in enumerate(chosen, start=1):
            x, y = self._slice(i, context.step, context)
            xs.append(np.column_stack([np.full(len(y), slot), scalings[i].to_target(x)]))
            ys.append(scalings[i].output(y))
        model = self._mt_warm if "multitask" in self._warm else self._mt_cold
        gp = self.fit_gp(model, np.concatenate(xs), np.concatenate(ys), context, "multitask")
        return None if gp is None else RoundModel(gp, train)

    def _slice(self, i: int, step: int, context: RoundContext) -> tuple[np.ndarray, np.ndarray]:
        task, norm = self.models.tasks[i], self.models.norms[i]
        centre = int(np.argmin(np.abs(task.time - step)))
        start = int(np.clip(centre - self.points // 2, 0, max(len(task) - self.points, 0)))
        rows = slice(start, start + self.points)
        unit = context.space.columns_to_unit(task.hparams[rows], self.settings.log_space)
        x = norm.inputs(task.time[rows], task.reward_before[rows], unit)
        return x, norm.targets(task.target[rows])

    def acquisition(  # noqa: D102
        self, fitted: RoundModel, fixed: np.ndarray, pending_x: np.ndarray
    ) -> tuple[Any, Any]:
        if fitted.gp.x.shape[1] == fitted.train.x.shape[1]:  # plain PB2* this round
            return super().acquisition(fitted, fixed, pending_x)
        task0 = np.zeros((len(pending_x), 1))
        return super().acquisition(
            fitted, np.concatenate([[0.0], fixed]), np.concatenate([task0, pending_x], 1)
        )

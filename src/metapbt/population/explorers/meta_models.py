"""The meta tasks' GPs and their RGPE weights, shared by the meta surrogates and TAF.

Meta-task GPs are fitted once per run, on first use, never per round; the rows come from the
one loader, [`metapbt.metadata.source.MetaSource.load`][metapbt.metadata.source.MetaSource.load]
(target left out, provenance checked). A fit is deterministic given its rows, so the runs of one
process that read the same stores for the same target (the methods and seeds of a study batch) share
one set of fits (`fitted_tasks`, keyed by the stores' files and modification times too).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

import numpy as np

from metapbt.errors import ConfigError, SurrogateError
from metapbt.metadata.rgpe import rgpe_weights
from metapbt.metadata.scaling import TaskScaling, window_scaling
from metapbt.metadata.source import MetaSource, NormalisedTask
from metapbt.metadata.store import MetaStore
from metapbt.population.explorers.base import RoundContext
from metapbt.population.explorers.training import TrainingSet
from metapbt.population.space import SearchSpace
from metapbt.surrogates import ExactGP, FittedGP, TimeVaryingMixture, TimeVaryingSE
from metapbt.surrogates.transfer import MetaTerms, padded_meta_means

logger = logging.getLogger(__name__)

_FITS: OrderedDict[tuple, tuple[list[NormalisedTask], list[FittedGP]]] = OrderedDict()
_FITS_KEPT = 4


def _fits_key(source: MetaSource, space: SearchSpace, log_space: bool) -> tuple:
    files = tuple(
        (str(f), f.stat().st_mtime_ns) for root in source.stores for f in MetaStore(root).runs()
    )
    target = source.target
    return (
        files,
        target.env,
        tuple(sorted(target.context.items())),
        target.name,
        repr(sorted(space.to_dict().items())),
        log_space,
        repr(source.protocol),
        source.strict,
    )


def fitted_tasks(
    source: MetaSource, space: SearchSpace, log_space: bool
) -> tuple[list[NormalisedTask], list[FittedGP]]:
    """The meta tasks that could be fitted and their GPs (shared by the runs of a process).

    Raises:
        ConfigError: If no meta task's GP could be fitted.
    """
    key = _fits_key(source, space, log_space)
    if key in _FITS:
        _FITS.move_to_end(key)
        return _FITS[key]
    cats = len(space.categorical_names)
    # A mixed space: PB2-Mix's kernel, so that a task's prediction at a category leans on its
    # rows of that category (and on the others only as far as its fitted mixture shares them).
    model = ExactGP(TimeVaryingMixture(cats) if cats else TimeVaryingSE())
    kept, gps = [], []
    for task in source.load(space.to_dict()):
        try:
            gp = model.fit(*task.rows(space, log_space))
        except SurrogateError as err:
            logger.warning("meta task %r left out: %s", task.task.task, err)
            continue
        kept.append(task)
        gps.append(gp)
    if not gps:
        raise ConfigError(f"no meta-task GP of {source.where} could be fitted")
    logger.info("fitted %d meta-task GPs from %s", len(gps), source.where)
    _FITS[key] = (kept, gps)
    while len(_FITS) > _FITS_KEPT:
        _FITS.popitem(last=False)
    return kept, gps


class MetaModels:
    """The meta tasks' rows and GPs (loaded and fitted once) and the weights of every round.

    Args:
        source: The meta-data and the target.
        log_space: Model log-scaled parameters in log space (as the target's rows are).
        samples: RGPE bootstrap samples.

    Attributes:
        weights: One dict per round that computed weights: ``step`` and each task's weight
            (and ``target`` where the target model was ranked too, as in TAF).
    """

    def __init__(self, source: MetaSource, log_space: bool = True, samples: int = 100) -> None:
        self.source = source
        self.log_space = log_space
        self.samples = samples
        self.tasks: list[NormalisedTask] = []
        self.gps: list[FittedGP] = []
        self.weights: list[dict[str, float]] = []

    def ensure(self, context: RoundContext) -> None:
        """Load the meta tasks and fit one GP per task, once per run."""
        if self.gps:
            return
        kept, gps = fitted_tasks(self.source, context.space, self.log_space)
        self.tasks, self.gps = list(kept), list(gps)

    def scalings(self, train: TrainingSet) -> list[TaskScaling]:
        """Scaling of every task to the target's current window."""
        return [
            window_scaling(t.norm, t.task.time, t.task.reward_before, t.task.target, *train.t_range)
            for t in self.tasks
        ]

    def terms(self, weights: np.ndarray, scalings: list[TaskScaling]) -> MetaTerms:
        """Pack the GPs with weights and scalings for compiled acquisitions."""
        return MetaTerms.build(self.gps, weights, scalings)

    def predictions(self, x: np.ndarray, scalings: list[TaskScaling]) -> np.ndarray:
        """``[M, n]`` target-scale means of every task at target-normalised ``x [n, D]``."""
        return padded_meta_means(self.terms(np.ones(len(self.gps)), scalings), x)

    def task_weights(
        self,
        context: RoundContext,
        train: TrainingSet,
        rng: np.random.Generator,
        loo: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, list[TaskScaling]]:
        """RGPE weights (recorded), the meta predictions at the target rows, the scalings.

        With ``loo`` (the target GP's leave-one-out means) the target is ranked too and its
        weight is the last entry.
        """
        self.ensure(context)
        scalings = self.scalings(train)
        preds = self.predictions(train.x, scalings)
        w = rgpe_weights(preds, train.y, rng, self.samples, loo=loo)
        row = {"step": float(context.step)}
        row.update({t.task.task: float(v) for t, v in zip(self.tasks, w, strict=False)})
        if loo is not None:
            row["target"] = float(w[-1])
        self.weights.append(row)
        return w, preds, scalings

    def slice(self, i: int, context: RoundContext, points: int) -> tuple[np.ndarray, np.ndarray]:
        """``points`` rows of task ``i`` centred on the current step, in its normalisation."""
        task = self.tasks[i].task
        centre = int(np.argmin(np.abs(task.time - context.step)))
        start = int(np.clip(centre - points // 2, 0, max(len(task) - points, 0)))
        return self.tasks[i].rows(context.space, self.log_space, slice(start, start + points))

    def state_dict(self) -> dict[str, Any]:
        """The recorded weights."""
        return {"weights": list(self.weights)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict` output."""
        self.weights = list(state["weights"])

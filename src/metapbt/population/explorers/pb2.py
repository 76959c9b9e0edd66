"""PB2's GP-bandit explore, in its stock (Ray) and PB2* variants.

One class, two settings objects (:func:`stock_pb2` and :func:`pb2_star`); the meta-learned
explorers replace the surrogate, not this scaffolding.

Deliberate differences from the reference (``shared/reference/metapb2_spec.md`` sections 1.3,
1.4 and 6), in both variants:

* kernel gradients come from autodiff, so they are right (the reference's were wrong);
* PB2*'s lengthscale starts strictly inside its box and really moves (the reference's started
  on the bound, where its gradient vanished, so it was frozen at 1);
* the new point's context is the donor's reward *now*, at the sync point where the clone
  continues, not its reward one interval earlier (weakness 4);
* pending points lower the variance under the fitted hyperparameters instead of a second GP
  refitted on fake zero labels, and UCB uses the latent variance without the noise
  (weakness 11);
* Ray's ``select_length`` window search is left out: it only acts at 200 or more rows, which no
  run of the paper's protocol reaches, and the time-varying kernel already discounts old rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from metapbt.errors import ConfigError, SurrogateError
from metapbt.population.explorers.base import Explorer, ExploreRequest, RoundContext
from metapbt.population.explorers.transfer import MetaTerms, prior_mean
from metapbt.population.history import SurrogateData
from metapbt.population.space import Config, SearchSpace
from metapbt.surrogates import (
    ExactGP,
    FittedGP,
    TimeVaryingSE,
    maximize_unit_box,
    stock_pb2_kernel,
    ucb_kappa,
)
from metapbt.surrogates.gp import predict

logger = logging.getLogger(__name__)
_EPS = 1e-8
STOCK_LENGTHSCALE_RANGE = (1e-5, 1.0)


@dataclass(frozen=True)
class PB2Settings:
    """Settings of a PB2-family explorer.

    Args:
        bounded_kernel: Box-constrained kernel (PB2*: variance [0.01, 100], squared
            lengthscale [1e-5, 1], forgetting [0, 0.5]); ``False`` fits Ray's free kernel and
            clips the lengthscale into [1e-5, 1] afterwards.
        ucb: ``"std"`` adds ``kappa * std`` (correct UCB, PB2*); ``"variance"`` adds
            ``kappa * variance`` as Ray's PB2 does.
        log_space: Model log-scaled parameters in log space (PB2*); otherwise linearly.
        no_data: What a clone gets when its donor has no training rows yet: ``"random"``, a
            fresh draw from the space (PB2*), or ``"copy"``, the donor's configuration (PB2).
        exploration: ``c1`` in ``kappa = sqrt(c1 + max(0, ln(c2 * n)))``.
        growth: ``c2`` in the same formula.
        max_rows: Most recent training rows kept.
        restarts: Gradient-ascent restarts of the acquisition optimiser.
        ascent_steps: Adam steps per restart.
        candidates: Random screening points of the acquisition optimiser.
    """

    bounded_kernel: bool = True
    ucb: Literal["std", "variance"] = "std"
    log_space: bool = True
    no_data: Literal["copy", "random"] = "random"
    exploration: float = 0.2
    growth: float = 0.4
    max_rows: int = 1000
    restarts: int = 10
    ascent_steps: int = 100
    candidates: int = 512

    def __post_init__(self) -> None:
        if self.ucb not in ("std", "variance"):
            raise ConfigError(f"ucb must be 'std' or 'variance', got {self.ucb!r}")
        if self.no_data not in ("copy", "random"):
            raise ConfigError(f"no_data must be 'copy' or 'random', got {self.no_data!r}")
        if self.exploration < 0 or self.growth <= 0:
            raise ConfigError(
                f"need exploration >= 0 and growth > 0, got {self.exploration}, {self.growth}"
            )
        for name in ("max_rows", "restarts", "ascent_steps", "candidates"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")


def stock_pb2() -> PB2Settings:
    """Ray's PB2 as the paper's baseline ran it (with correct gradients)."""
    return PB2Settings(bounded_kernel=False, ucb="variance", log_space=False, no_data="copy")


def pb2_star() -> PB2Settings:
    """PB2*: bounded kernel, UCB with the standard deviation, log space, random draw."""
    return PB2Settings()


@dataclass(frozen=True)
class TrainingSet:
    """PB2 rows normalised for the GP: ``x = (t, r, h) [n, 2 + d]``, ``y [n]``.

    ``t`` and ``r`` are scaled by the window's min and max, ``h`` by the search-space bounds,
    and ``y`` is standardised (population std) and clipped to [-2, 2].
    """

    x: np.ndarray
    y: np.ndarray
    members: np.ndarray
    t_range: tuple[float, float]
    r_range: tuple[float, float]

    def context(self, step: float, reward: float) -> np.ndarray:
        """The normalised ``(t, r)`` of a new point."""
        return np.array([_scale(step, *self.t_range), _scale(reward, *self.r_range)])


def _scale(value: np.ndarray | float, low: float, high: float) -> np.ndarray:
    return (np.asarray(value, np.float64) - low) / (high - low + _EPS)


def training_set(
    data: SurrogateData, space: SearchSpace, log_space: bool, clip: bool
) -> TrainingSet:
    """Normalise PB2 rows (see :class:`TrainingSet`); ``clip`` clips ``h`` into [0, 1]."""
    t_range = (float(data.time.min()), float(data.time.max()))
    r_range = (float(data.reward_before.min()), float(data.reward_before.max()))
    h = space.columns_to_unit(data.hparams, log_space)
    if clip:
        h = np.clip(h, 0.0, 1.0)
    y = np.clip((data.target - data.target.mean()) / (data.target.std() + _EPS), -2.0, 2.0)
    x = np.column_stack([_scale(data.time, *t_range), _scale(data.reward_before, *r_range), h])
    return TrainingSet(x, y, data.member, t_range, r_range)


@partial(
    jax.tree_util.register_dataclass,
    data_fields=["mean_gp", "var_gp", "fixed", "kappa", "std_weight", "scale", "offset", "prior"],
    meta_fields=[],
)
@dataclass(frozen=True)
class UCBArgs:
    """Traced arguments of the UCB objective (so new data never recompiles it).

    The predictive mean is ``scale * gp_mean + offset + prior(x)`` and the variance
    ``scale**2 * gp_var``: plain PB2 has ``scale = 1``, ``offset = 0`` and no prior; MetaPrior-PB2
    models the standardised residual of its meta prior.
    """

    mean_gp: FittedGP
    var_gp: FittedGP
    fixed: jax.Array
    kappa: jax.Array
    std_weight: jax.Array  # 1: add kappa * std; 0: add kappa * variance
    scale: jax.Array
    offset: jax.Array
    prior: MetaTerms | None


def ucb_objective(args: UCBArgs, u: jax.Array) -> jax.Array:
    """UCB at hyperparameters ``u [d]`` (unit cube) with the context fixed."""
    x = jnp.concatenate([args.fixed, u])[None, :]
    mean = predict(args.mean_gp, x)[0][0] * args.scale + args.offset
    if args.prior is not None:
        mean = mean + prior_mean(args.prior, x)[0]
    var = predict(args.var_gp, x)[1][0] * args.scale**2
    bonus = jnp.where(args.std_weight > 0, jnp.sqrt(jnp.maximum(var, 1e-18)), var)
    return mean + args.kappa * bonus


@dataclass
class RoundModel:
    """The surrogate of one sync point: a GP on (possibly transformed) targets.

    Attributes:
        gp: GP on the training inputs.
        train: The normalised target rows.
        scale: Standard deviation the GP's targets were divided by (1 for plain PB2).
        offset: Mean added back to the GP's mean (0 for plain PB2).
        prior: Meta prior added to the mean (MetaPrior-PB2), or ``None``.
        meta: Weighted meta-task models for transfer acquisitions (TAF), or ``None``.
        target_weight: The target model's RGPE weight (TAF).
    """

    gp: FittedGP
    train: TrainingSet
    scale: float = 1.0
    offset: float = 0.0
    prior: MetaTerms | None = None
    meta: MetaTerms | None = None
    target_weight: float = 1.0


@dataclass
class PB2Explorer(Explorer):
    """GP-bandit explore (PB2 / PB2*); see the module docstring for what differs from Ray.

    Attributes:
        fits: One dict per GP fit (``step``, ``rows`` and the fitted hyperparameters), for
            diagnostics and the run's outputs.
    """

    settings: PB2Settings = field(default_factory=pb2_star)
    fits: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        kernel = TimeVaryingSE() if self.settings.bounded_kernel else stock_pb2_kernel()
        self._model = ExactGP(kernel)
        self._warm: dict[str, dict[str, float]] = {}
        self._round: RoundModel | None = None

    def state_dict(self) -> dict[str, Any]:  # noqa: D102
        return {"warm_start": self._warm, "fits": list(self.fits)}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: D102
        self._warm = dict(state["warm_start"] or {})
        self.fits = list(state["fits"])

    def begin_round(self, context: RoundContext, rng: np.random.Generator) -> None:  # noqa: D102
        self._round = None
        data = context.history.surrogate_data(self.settings.max_rows)
        if len(data) == 0:
            return
        s = self.settings
        train = training_set(data, context.space, s.log_space, clip=s.bounded_kernel)
        self._round = self.surrogate(context, train, rng)

    def surrogate(
        self, context: RoundContext, train: TrainingSet, rng: np.random.Generator
    ) -> RoundModel | None:
        """Build this round's model (override to change the surrogate); ``None``: draw."""
        gp = self.fit_gp(self._model, train.x, train.y, context, "target")
        return None if gp is None else RoundModel(gp, train)

    def fit_gp(
        self, model: ExactGP, x: np.ndarray, y: np.ndarray, context: RoundContext, name: str
    ) -> FittedGP | None:
        """Fit ``model`` warm-started from its last fit; log it; ``None`` if the fit failed."""
        try:
            gp = model.fit(x, y, reserve=context.size, warm_start=self._warm.get(name))
        except SurrogateError as err:
            logger.warning("step %d: %s; this round's explores draw at random", context.step, err)
            return None
        if not self.settings.bounded_kernel:
            params = dict(gp.params)
            params["lengthscale"] = jnp.clip(params["lengthscale"], *STOCK_LENGTHSCALE_RANGE)
            gp = model.condition(params, gp.x, gp.y, gp.mask)
        self._warm[name] = gp.hyperparameters()
        self.fits.append(
            {"step": float(context.step), "rows": float(len(y)), "model": name, **self._warm[name]}
        )
        logger.debug("step %d: %s GP on %d rows: %s", context.step, name, len(y), self._warm[name])
        return gp

    def acquisition(
        self, fitted: RoundModel, fixed: np.ndarray, pending_x: np.ndarray
    ) -> tuple[Any, Any]:
        """``(objective, args)`` to maximise over the unit cube (override for another one)."""
        s = self.settings
        args = UCBArgs(
            mean_gp=fitted.gp,
            var_gp=fitted.gp.with_pending(pending_x),
            fixed=jnp.asarray(fixed, jnp.float32),
            kappa=jnp.asarray(ucb_kappa(len(fitted.train.y), s.exploration, s.growth), jnp.float32),
            std_weight=jnp.asarray(1.0 if s.ucb == "std" else 0.0, jnp.float32),
            scale=jnp.asarray(fitted.scale, jnp.float32),
            offset=jnp.asarray(fitted.offset, jnp.float32),
            prior=fitted.prior,
        )
        return ucb_objective, args

    def explore(  # noqa: D102
        self, context: RoundContext, request: ExploreRequest, rng: np.random.Generator
    ) -> Config:
        space, s = context.space, self.settings
        fitted = self._round
        if fitted is None or request.donor not in fitted.train.members:
            return dict(request.donor_config) if s.no_data == "copy" else space.sample(rng)
        fixed = fitted.train.context(context.step, request.donor_reward)
        pending = space.to_unit(list(request.pending), s.log_space)
        if s.bounded_kernel:
            pending = np.clip(pending, 0.0, 1.0)
        pending_x = np.concatenate([np.tile(fixed, (len(pending), 1)), pending], axis=1)
        objective, args = self.acquisition(fitted, fixed, pending_x)
        key = jax.random.key(int(rng.integers(2**31)))
        u, _ = maximize_unit_box(
            objective,
            args,
            key,
            dim=space.dim,
            restarts=s.restarts,
            steps=s.ascent_steps,
            candidates=s.candidates,
        )
        return space.from_unit(np.asarray(u, np.float64), s.log_space)

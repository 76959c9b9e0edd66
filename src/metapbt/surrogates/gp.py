"""Exact Gaussian processes in JAX: marginal-likelihood fitting, conditioning, prediction.

Data is padded to a few fixed sizes (powers of two, at least 64 rows) and masked, so a history
that grows by a few rows per round reuses the compiled programs instead of recompiling: padded
rows are decoupled from the valid ones and contribute exactly nothing to the likelihood or the
posterior. 64 rows hold a whole run of the paper's protocol (population 4, 15 rounds: at most
56 rows plus the pending points), so such a run compiles each GP program once.

Shapes: ``n`` padded rows, ``D`` input columns, ``q`` query points, ``S`` fitting restarts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils as otu

from metapbt.errors import SurrogateError
from metapbt.stored_programs import StoredProgram
from metapbt.surrogates.kernels import Kernel
from metapbt.surrogates.params import (
    Bounded,
    Positive,
    Transform,
    Value,
    constrain,
    unconstrain,
)

Params = dict[str, jax.Array]
MIN_BUCKET = 64
_BAD_LOSS = 1e10


def bucket_size(rows: int) -> int:
    """The padded size used for ``rows`` rows: the next power of two, at least 64."""
    return max(MIN_BUCKET, 1 << max(rows - 1, 0).bit_length())


def pad_rows(x: np.ndarray, y: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
    """Pad ``x [m, D]`` and ``y [m]`` with zero rows to ``size``; return ``(x, y, mask)``."""
    m = x.shape[0]
    xp = np.zeros((size, x.shape[1]), np.float32)
    yp = np.zeros(size, np.float32)
    mask = np.zeros(size, bool)
    xp[:m], yp[:m], mask[:m] = x, y, True
    return xp, yp, mask


@dataclass(frozen=True)
class ExactGP:
    """An exact GP regression model with Gaussian noise.

    Args:
        kernel: The covariance function (its hyperparameters are fitted).
        noise: Constraint of the noise variance.
        noise_starts: Initial noise variances; every kernel start is tried with each.
        max_iter: L-BFGS iterations per restart (at most). A traced value: models that differ
            only in it share their compiled programs (it takes no part in equality).
        tolerance: Stop a restart once the gradient norm of the mean negative log likelihood
            falls below this.
        jitter: Relative diagonal jitter (times the kernel's largest diagonal value).
        warm_only: Start from the warm start alone when there is one (the fixed starts only
            without one). For a model refitted every round for a few iterations, where a
            fixed start run for those few iterations does not win (MultiTask-PB2's model).
    """

    kernel: Kernel
    noise: Transform = Bounded(1e-4, 10.0)
    noise_starts: tuple[float, ...] = (0.5,)
    max_iter: int = field(default=50, compare=False)
    tolerance: float = 1e-4
    jitter: float = 1e-5
    warm_only: bool = False

    @property
    def specs(self) -> dict[str, Transform]:
        """Constraints of all hyperparameters: the kernel's plus ``noise``."""
        return {**self.kernel.specs, "noise": self.noise}

    def initial_raw(self, warm_start: Mapping[str, float] | None = None) -> Params:
        """Stacked raw starting points, ``[S + 1]`` per hyperparameter (see ``warm_only``).

        The fixed starts (kernel starts x noise starts) are always tried; a ``warm_start``
        (constrained values, e.g. the previous round's fit) is one more. Without one, the
        first fixed start fills that slot, so the number of starts, hence the compiled
        program, is the same in every round. With ``warm_only``, a warm start replaces the
        fixed starts and there is no filler (one compiled program when there is one fixed
        start).
        """
        starts: list[Mapping[str, Value]] = [
            {**k, "noise": s} for k, s in itertools.product(self.kernel.inits, self.noise_starts)
        ]
        if self.warm_only:
            starts = starts if warm_start is None else [self._inside(warm_start)]
        else:
            starts.append(starts[0] if warm_start is None else self._inside(warm_start))
        raws = [unconstrain(self.specs, start) for start in starts]
        return jax.tree.map(lambda *leaves: jnp.stack(leaves), *raws)

    def _inside(self, values: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Nudge values that sit on a box bound slightly inside it (a warm start may)."""
        out = {}
        for name, spec in self.specs.items():
            value = np.asarray(values[name], np.float64)
            if isinstance(spec, Bounded):
                margin = 1e-4 * (spec.high - spec.low)
                value = np.clip(value, spec.low + margin, spec.high - margin)
            elif isinstance(spec, Positive):
                value = np.maximum(value, spec.floor * 2.0)
            out[name] = value
        return out

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        reserve: int = 0,
        warm_start: Mapping[str, float] | None = None,
        min_rows: int = 0,
    ) -> FittedGP:
        """Fit the hyperparameters by maximum marginal likelihood and condition on the data.

        Args:
            x: ``[m, D]`` inputs.
            y: ``[m]`` targets.
            reserve: Extra padded rows to keep free for pending points.
            warm_start: Hyperparameters to start one restart from (e.g. the last round's).
            min_rows: Pad to at least this many rows (a caller whose row count varies from
                round to round keeps one padded size, hence one compiled program).

        Raises:
            SurrogateError: If there is no data or every restart gave a non-finite likelihood.
        """
        x = np.asarray(x, np.float32)
        y = np.asarray(y, np.float32)
        if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[0] == 0:
            raise SurrogateError(
                f"expected x [m, D] and y [m] with m > 0, got {x.shape}, {y.shape}"
            )
        xp, yp, mask = pad_rows(x, y, bucket_size(max(x.shape[0] + reserve, min_rows)))
        raw, losses = FIT(self.initial_raw(warm_start), xp, yp, mask, self.max_iter, model=self)
        losses = np.asarray(losses)
        if not np.isfinite(losses).any() or losses.min() >= _BAD_LOSS:
            raise SurrogateError(
                f"GP fit failed: every restart gave a non-finite likelihood on {x.shape[0]} rows"
            )
        best = int(np.argmin(losses))
        params = constrain(self.specs, jax.tree.map(lambda leaf: leaf[best], raw))
        return self.condition(params, xp, yp, mask)

    def condition(
        self,
        params: Mapping[str, jax.Array],
        x: np.ndarray | jax.Array,
        y: np.ndarray | jax.Array,
        mask: np.ndarray | jax.Array,
    ) -> FittedGP:
        """Condition on padded data with fixed hyperparameters."""
        params = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
        chol, alpha = _factor(self, params, jnp.asarray(x), jnp.asarray(y), jnp.asarray(mask))
        return FittedGP(
            self, params, jnp.asarray(x), jnp.asarray(y), jnp.asarray(mask), chol, alpha
        )


@partial(
    jax.tree_util.register_dataclass,
    data_fields=["params", "x", "y", "mask", "chol", "alpha"],
    meta_fields=["model"],
)
@dataclass(frozen=True)
class FittedGP:
    """A GP conditioned on (padded) data; a pytree, so it can enter jitted functions.

    Attributes:
        model: The model that produced it (static).
        params: Constrained hyperparameters (kernel's and ``noise``).
        x: ``[n, D]`` padded inputs; ``mask [n]`` marks the valid rows.
        y: ``[n]`` padded targets.
        chol: ``[n, n]`` Cholesky factor of the masked covariance plus noise.
        alpha: ``[n]`` ``K^-1 y``.
    """

    model: ExactGP
    params: Params
    x: jax.Array
    y: jax.Array
    mask: jax.Array
    chol: jax.Array
    alpha: jax.Array = field(repr=False)

    def hyperparameters(self) -> dict[str, Any]:
        """Fitted hyperparameters as Python floats (lists for vector-valued ones)."""
        return {k: np.asarray(v).tolist() for k, v in self.params.items()}

    def loo_means(self) -> np.ndarray:
        """Closed-form leave-one-out predictive means at the valid rows (fixed hyperparameters).

        ``mu_loo_j = y_j - [K^-1 y]_j / [K^-1]_jj``: one Cholesky instead of ``n`` refits
        (the reference refitted ``n`` GPs per explore, weakness 23).
        """
        return np.asarray(_loo(self))[np.asarray(self.mask)]

    def predict(self, xq: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Posterior mean and latent variance (without observation noise) at ``xq [q, D]``."""
        return predict(self, jnp.asarray(xq, jnp.float32))

    def with_pending(self, pending: np.ndarray) -> FittedGP:
        """The same GP also conditioned on ``pending [p, D]`` inputs (for the variance only).

        With fixed hyperparameters the posterior variance does not depend on the labels, so the
        pending points get label 0 and only lower the variance around them (GP-BUCB). The
        reference instead refits a second GP on the fake labels (weakness 11); we keep the
        fitted hyperparameters.

        Raises:
            SurrogateError: If fewer than ``p`` padded rows are free (raise ``reserve``).
        """
        pending = np.asarray(pending, np.float32).reshape(-1, self.x.shape[1])
        if pending.shape[0] == 0:
            return self
        mask = np.asarray(self.mask).copy()
        free = np.flatnonzero(~mask)
        if free.size < pending.shape[0]:
            raise SurrogateError(
                f"{pending.shape[0]} pending points but only {free.size} free padded rows; "
                "fit with a larger reserve"
            )
        slots = free[: pending.shape[0]]
        x = np.asarray(self.x).copy()
        x[slots], mask[slots] = pending, True
        y = np.zeros(mask.shape[0], np.float32)
        return self.model.condition(self.params, x, y, mask)


def _masked_cov(model: ExactGP, params: Params, x: jax.Array, mask: jax.Array) -> jax.Array:
    """Covariance of the valid rows plus noise; padded rows become an identity block."""
    k = model.kernel(params, x, x)
    pair = mask[:, None] & mask[None, :]
    scale = jnp.max(jnp.where(mask, jnp.diagonal(k), 0.0))
    diag = jnp.where(mask, params["noise"] + model.jitter * scale, 1.0)
    return jnp.where(pair, k, 0.0) + jnp.diag(diag)


def _factor_impl(
    model: ExactGP, params: Params, x: jax.Array, y: jax.Array, mask: jax.Array
) -> tuple[jax.Array, jax.Array]:
    chol = jnp.linalg.cholesky(_masked_cov(model, params, x, mask))
    alpha = jax.scipy.linalg.cho_solve((chol, True), jnp.where(mask, y, 0.0))
    return chol, alpha


_factor = jax.jit(_factor_impl, static_argnames="model")


def negative_log_likelihood(
    model: ExactGP, params: Mapping[str, jax.Array], x: jax.Array, y: jax.Array, mask: jax.Array
) -> jax.Array:
    """``-log p(y | x, params)`` of the valid rows (constrained ``params``)."""
    chol, alpha = _factor_impl(model, dict(params), x, y, mask)
    return nll_from_factor(y, mask, chol, alpha)


def nll_from_factor(y: jax.Array, mask: jax.Array, chol: jax.Array, alpha: jax.Array) -> jax.Array:
    """``-log p(y)`` of the valid rows from their covariance's Cholesky factor and ``K^-1 y``."""
    return (
        0.5 * jnp.dot(jnp.where(mask, y, 0.0), alpha)
        + jnp.sum(jnp.log(jnp.diagonal(chol)))
        + 0.5 * jnp.sum(mask) * math.log(2.0 * math.pi)
    )


@partial(jax.jit, static_argnames="model")
def _fit(
    raw_starts: Params,
    x: jax.Array,
    y: jax.Array,
    mask: jax.Array,
    max_iter: jax.Array | int,
    *,
    model: ExactGP,
) -> tuple[Params, jax.Array]:
    """L-BFGS on the mean negative log likelihood from each start; returns raws and losses."""
    n = jnp.maximum(jnp.sum(mask), 1)

    def loss(raw: Params) -> jax.Array:
        value = negative_log_likelihood(model, constrain(model.specs, raw), x, y, mask) / n
        return jnp.where(jnp.isfinite(value), value, _BAD_LOSS)

    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    def step(carry: tuple[Params, optax.OptState]) -> tuple[Params, optax.OptState]:
        raw, state = carry
        value, grad = value_and_grad(raw, state=state)
        updates, state = opt.update(grad, state, raw, value=value, grad=grad, value_fn=loss)
        return optax.apply_updates(raw, updates), state

    def keep_going(carry: tuple[Params, optax.OptState]) -> jax.Array:
        _, state = carry
        count = otu.tree_get(state, "count")
        grad_norm = otu.tree_norm(otu.tree_get(state, "grad"))
        return (count == 0) | ((count < max_iter) & (grad_norm >= model.tolerance))

    def run(raw0: Params) -> tuple[Params, jax.Array]:
        raw, _ = jax.lax.while_loop(keep_going, step, (raw0, opt.init(raw0)))
        return raw, loss(raw)

    # lax.map, not vmap: a vmapped L-BFGS while-loop deadlocks XLA's CPU thread pool (seen with
    # jax 0.10 on 2 cores; known upstream as the Eigen-pool vmap hang).
    return jax.lax.map(run, raw_starts)


FIT = StoredProgram("gp.fit", _fit, {}, output=lambda a: jax.tree.structure((a[0], 0)))
"""The fit, stored traced (`metapbt.stored_programs`; the model is part of the key)."""


@jax.jit
def _loo(gp: FittedGP) -> jax.Array:
    eye = jnp.eye(gp.chol.shape[0], dtype=gp.chol.dtype)
    inv_diag = jnp.diagonal(jax.scipy.linalg.cho_solve((gp.chol, True), eye))
    return jnp.where(gp.mask, gp.y, 0.0) - gp.alpha / inv_diag


@jax.jit
def predict(gp: FittedGP, xq: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Posterior mean ``[q]`` and latent variance ``[q]`` of ``gp`` at ``xq [q, D]``."""
    kernel = gp.model.kernel
    cross = jnp.where(gp.mask[:, None], kernel(gp.params, gp.x, xq), 0.0)
    mean = cross.T @ gp.alpha
    v = jax.scipy.linalg.solve_triangular(gp.chol, cross, lower=True)
    prior = jax.vmap(lambda row: kernel(gp.params, row[None], row[None])[0, 0])(xq)
    return mean, jnp.maximum(prior - jnp.sum(v**2, axis=0), 0.0)

"""Deep-kernel GP (DKL): PB2*'s time-varying kernel times a factor on a neural feature map.

```text
k(x, x') = var * (1 - eps)^(|t - t'| / 2)
               * exp(-|u - u'|^2 / l_raw) * exp(-|phi(u) - phi(u')|^2 / l_phi)
```

where ``x = (t, u)``, ``u`` = (reward before, hyperparameters) and ``phi`` is a flax MLP ending in
``tanh`` (features in [-1, 1]); without ``raw_factor`` the raw-input factor is left out (the
deep kernel of the reference). The network weights are one flat hyperparameter vector
(``"net"``) of the kernel, so everything the core's `ExactGP`
does (conditioning, prediction, pending points, leave-one-out) works unchanged; only fitting
differs: network and kernel are trained jointly by Adam on the marginal likelihood, plus an
optional Gaussian prior on the weights (`fit_dkl`), with early stopping on held-out rows
that returns the best iterate.

Deliberate differences from the metaPBT reference, with the measurement behind them
(``benchmarks/explore_quality.py``, ``benchmarks/dkl_ablation.py``;
docs/results/deep-kernels.md):

* the raw-input factor, a start at PB2*'s fit (``DKLSettings.start_from_gp``, done by the
  explorer) and a prior on the weights: the deep kernel alone, fitted by maximum likelihood on
  tens of rows, interpolated noise (noise variance ~1e-3, 56-59 % of held-out rows inside its
  90 % interval) and picked no closer to the optimum than uniform draws; with them it picks as
  close as PB2* and is calibrated (0.82-0.93);
* the time-varying factor is kept (time is not a network input), so the surrogate still
  forgets old data as PB2's theory needs;
* one model supplies both the mean and the variance of UCB by default (the reference added the
  variance of a separate RBF GP on raw inputs to the DKL mean: ``variance="plain"``, measured
  to pick no better);
* early stopping restores the best parameters (the reference's snapshot aliased the live
  tensors, so it always returned the last iterate);
* a small network (2 hidden layers of 32, 2 features) instead of 7-1000-500-50-2 on tens to
  hundreds of rows, an exact GP instead of KISS-GP with a spectral-mixture kernel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, partial
from typing import Any, Literal, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from metapbt.errors import ConfigError, SurrogateError
from metapbt.surrogates.gp import (
    ExactGP,
    FittedGP,
    Params,
    _factor_impl,
    bucket_size,
    nll_from_factor,
    pad_rows,
)
from metapbt.surrogates.kernels import Kernel, TimeVaryingSE
from metapbt.surrogates.params import Bounded, Real, Transform, constrain, unconstrain

_BAD = 1e10
RAW_LENGTHSCALE = Bounded(1e-5, 1.0)  # PB2*'s box for the raw-input factor
RAW_START = 0.5
FEATURES_OFF = 100.0  # a feature lengthscale at which phi in [-1, 1]^k changes k by < 8 %


class FeatureMap(nn.Module):
    """MLP ``u -> phi(u)`` with ``tanh`` activations and ``tanh`` features."""

    hidden: tuple[int, ...]
    features: int

    @nn.compact
    def __call__(self, u: jax.Array) -> jax.Array:  # noqa: D102
        for width in self.hidden:
            u = nn.tanh(nn.Dense(width)(u))
        return nn.tanh(nn.Dense(self.features)(u))


@cache
def _network(inputs: int, hidden: tuple[int, ...], features: int) -> tuple[FeatureMap, Any, int]:
    """The module, the unravel function of its flat weights, and their count (cached)."""
    module = FeatureMap(hidden, features)
    shapes = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, inputs), jnp.float32))
    flat, unravel = ravel_pytree(jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes))
    return module, unravel, int(flat.shape[0])


@dataclass(frozen=True, eq=True)
class DeepKernel(Kernel):
    """Time-varying SE kernel on ``(t, phi(u))``; see the module docstring.

    Args:
        inputs: Columns of ``u`` (everything after time).
        hidden: Hidden layer widths.
        features: Output features of the network.
        base: Kernel on ``(t, features)``; its lengthscale box suits features in [-1, 1].
        seed: Seed of the network's initial weights.
        raw_factor: Multiply by PB2*'s squared-exponential factor on the raw inputs
            ``exp(-|u - u'|^2 / raw_lengthscale)`` (its own lengthscale, PB2*'s box and start),
            so the deep kernel contains PB2*'s kernel: with a long feature lengthscale it *is*
            PB2*'s, and the network can only add structure the data supports.
    """

    inputs: int
    hidden: tuple[int, ...] = (32, 32)
    features: int = 2
    base: TimeVaryingSE = field(
        default_factory=lambda: TimeVaryingSE(
            lengthscale=Bounded(1e-3, 10.0), starts=((1.0, 1.0, 0.1),)
        )
    )
    seed: int = 0
    raw_factor: bool = False

    def __post_init__(self) -> None:
        if self.inputs < 1 or self.features < 1 or any(w < 1 for w in self.hidden):
            raise ConfigError(
                f"deep kernel needs positive sizes, got inputs={self.inputs}, "
                f"hidden={self.hidden}, features={self.features}"
            )

    @property
    def n_weights(self) -> int:
        """Number of network weights."""
        return _network(self.inputs, self.hidden, self.features)[2]

    @property
    def specs(self) -> Mapping[str, Transform]:  # noqa: D102
        raw = {"raw_lengthscale": RAW_LENGTHSCALE} if self.raw_factor else {}
        return {**self.base.specs, "net": Real(), **raw}

    @property
    def inits(self) -> tuple[Mapping[str, Any], ...]:  # noqa: D102
        module, _, _ = _network(self.inputs, self.hidden, self.features)
        weights = module.init(jax.random.key(self.seed), jnp.zeros((1, self.inputs)))
        flat = np.asarray(ravel_pytree(weights)[0])
        raw = {"raw_lengthscale": RAW_START} if self.raw_factor else {}
        return tuple({**init, "net": flat, **raw} for init in self.base.inits)

    def features_of(self, net: jax.Array, u: jax.Array) -> jax.Array:
        """``phi(u) [n, features]`` under the flat weights ``net``."""
        module, unravel, _ = _network(self.inputs, self.hidden, self.features)
        # flax types Module.apply for a call with ``mutable`` too, which returns (output,
        # state); called without it, as here, it returns the features alone.
        return cast(jax.Array, module.apply(unravel(net), u))

    def __call__(self, params: Mapping[str, jax.Array], x1: jax.Array, x2: jax.Array) -> jax.Array:
        """Covariance ``[n, m]`` between ``x1 [n, 1 + inputs]`` and ``x2 [m, 1 + inputs]``."""
        z1 = self.features_of(params["net"], x1[:, 1:])
        z2 = self.features_of(params["net"], x2[:, 1:])
        k = self.base(
            params,
            jnp.concatenate([x1[:, :1], z1], axis=1),
            jnp.concatenate([x2[:, :1], z2], axis=1),
        )
        if not self.raw_factor:
            return k
        u1, u2 = x1[:, 1:], x2[:, 1:]
        sq = jnp.sum(u1**2, axis=1)[:, None] + jnp.sum(u2**2, axis=1)[None, :] - 2.0 * u1 @ u2.T
        return k * jnp.exp(-jnp.maximum(sq, 0.0) / params["raw_lengthscale"])


@dataclass(frozen=True)
class DKLSettings:
    """How a deep-kernel GP is built and trained (defaults suit PB2's tens to hundreds of rows).

    Args:
        hidden: Hidden layer widths of the feature map.
        features: Features it outputs.
        steps: Adam steps per fit (all compiled into one program).
        lr_net: Adam learning rate of the network.
        lr_gp: Adam learning rate of the kernel and noise hyperparameters.
        patience: Stop after this many steps without a better validation loss.
        val_fraction: Share of rows held out for early stopping (none below ``min_val_rows``).
        min_val_rows: Fewest held-out rows worth validating on.
        noise_floor: Lower bound of the noise variance (of standardised targets).
        prior_std: Standard deviation of a Gaussian prior on the network weights, centred on
            the weights a fit is anchored to (the initial weights, or the pre-trained ones
            when fine-tuning); ``None``: no prior (maximum likelihood).
        warm_network: Start each round's fit from the previous round's (``dkl``); otherwise
            from the anchor.
        raw_factor: See `DeepKernel` (the feature lengthscale then starts at 100,
            where features in [-1, 1] barely move the kernel: the fit starts from PB2*'s).
        variance: ``"joint"``: the deep-kernel GP supplies UCB's variance; ``"plain"``: a
            PB2* GP on the raw inputs does (the reference's choice), the deep kernel the mean.
        start_from_gp: Start each fit's time, raw-input and noise terms from a PB2* GP
            fitted (by L-BFGS) on the same rows (needs ``raw_factor``); the network and the
            feature lengthscale start where they would otherwise.
    """

    hidden: tuple[int, ...] = (32, 32)
    features: int = 2
    steps: int = 300
    lr_net: float = 3e-3
    lr_gp: float = 2e-2
    patience: int = 50
    val_fraction: float = 0.2
    min_val_rows: int = 4
    noise_floor: float = 1e-4
    prior_std: float | None = 0.03
    warm_network: bool = True
    raw_factor: bool = True
    variance: Literal["joint", "plain"] = "joint"
    start_from_gp: bool = True

    def __post_init__(self) -> None:
        if self.steps < 1 or self.patience < 1:
            raise ConfigError("steps and patience must be at least 1")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.lr_net <= 0 or self.lr_gp <= 0:
            raise ConfigError("learning rates must be positive")
        if not 0.0 < self.noise_floor < 1.0:
            raise ConfigError(f"noise_floor must be in (0, 1), got {self.noise_floor}")
        if self.prior_std is not None and not self.prior_std > 0:
            raise ConfigError(f"prior_std must be positive or None, got {self.prior_std}")
        if self.variance not in ("joint", "plain"):
            raise ConfigError(f"variance must be 'joint' or 'plain', got {self.variance!r}")
        if self.start_from_gp and not self.raw_factor:
            raise ConfigError("start_from_gp needs raw_factor (the PB2* terms it starts from)")

    def model(self, inputs: int, seed: int = 0) -> ExactGP:
        """The exact GP with a deep kernel over ``inputs`` columns after time."""
        kernel = DeepKernel(inputs, tuple(self.hidden), self.features, seed=seed)
        if self.raw_factor:
            base = TimeVaryingSE(
                lengthscale=Bounded(1e-3, 1000.0), starts=((1.0, FEATURES_OFF, 0.1),)
            )
            kernel = replace(kernel, base=base, raw_factor=True)
        return ExactGP(kernel, noise=Bounded(self.noise_floor, 10.0))


@dataclass(frozen=True)
class DKLFit:
    """A fitted deep-kernel GP and how training went.

    Attributes:
        gp: Conditioned on all rows (training and held-out) with the best parameters.
        params: The best (constrained) parameters.
        train_loss: ``[steps]`` mean negative log likelihood of the training rows (``nan``
            after early stopping: those steps are not computed).
        val_loss: ``[steps]`` held-out mean predictive NLL (the training loss when no rows
            were held out); ``inf`` from the step that stopped training.
        best_step: Step whose parameters were kept.
        held_out: ``[n]`` which rows were held out for early stopping.
    """

    gp: FittedGP
    params: Params
    train_loss: np.ndarray
    val_loss: np.ndarray
    best_step: int
    held_out: np.ndarray


def fit_dkl(
    model: ExactGP,
    x: np.ndarray,
    y: np.ndarray,
    settings: DKLSettings,
    rng: np.random.Generator,
    start: Mapping[str, Any] | None = None,
    reserve: int = 0,
    anchor: np.ndarray | None = None,
) -> DKLFit:
    """Train network and kernel jointly on ``(x, y)``; keep the best iterate.

    Args:
        model: An `ExactGP` with a `DeepKernel`.
        x: ``[n, 1 + inputs]`` inputs, time first.
        y: ``[n]`` targets (standardised by the caller).
        settings: Training settings.
        rng: Chooses the held-out rows.
        start: Constrained parameters to start from (a previous fit, a pre-trained state);
            the kernel's initial values otherwise.
        reserve: Padded rows kept free for pending points.
        anchor: Centre of the weights' prior (``settings.prior_std``): the network weights of
            ``start`` by default, the kernel's initial weights without a start.

    Raises:
        SurrogateError: On empty or mis-shaped data, or when training diverges from the start.
    """
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.float32)
    if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[0] == 0:
        raise SurrogateError(f"expected x [n, D] and y [n] with n > 0, got {x.shape}, {y.shape}")
    n = x.shape[0]
    n_val = round(settings.val_fraction * n)
    n_val = n_val if n_val >= settings.min_val_rows and n - n_val >= 2 else 0
    held = np.zeros(n, bool)
    held[rng.permutation(n)[:n_val]] = True
    xp, yp, valid = pad_rows(x, y, bucket_size(n + reserve))
    train_mask = valid.copy()
    train_mask[:n] &= ~held
    val_mask = np.zeros_like(valid)
    val_mask[:n] = held
    init = dict(start) if start is not None else dict(model.kernel.inits[0])
    init.setdefault("noise", model.noise_starts[0])
    raw0 = unconstrain(model.specs, model._inside(init))
    centre = np.asarray(init["net"] if anchor is None else anchor, np.float32)
    best_raw, train_loss, val_loss, best_step = _train(
        model, settings, raw0, xp, yp, train_mask, val_mask, jnp.asarray(centre)
    )
    train_loss, val_loss = np.asarray(train_loss), np.asarray(val_loss)
    best_step = int(best_step)
    if not np.isfinite(val_loss[best_step]) or val_loss[best_step] >= _BAD:
        raise SurrogateError(f"deep-kernel GP training diverged on {n} rows")
    params = constrain(model.specs, best_raw)
    gp = model.condition(params, xp, yp, valid)
    return DKLFit(gp, params, train_loss, val_loss, best_step, held)


def heldout_nll(
    model: ExactGP,
    params: Params,
    x: jax.Array,
    y: jax.Array,
    train_mask: jax.Array,
    val_mask: jax.Array,
) -> jax.Array:
    """Mean predictive NLL of the ``val_mask`` rows given the ``train_mask`` rows."""
    chol, alpha = _factor_impl(model, params, x, y, train_mask)
    return _heldout_from_factor(model, params, x, y, train_mask, val_mask, chol, alpha)


def _heldout_from_factor(
    model: ExactGP,
    params: Params,
    x: jax.Array,
    y: jax.Array,
    train_mask: jax.Array,
    val_mask: jax.Array,
    chol: jax.Array,
    alpha: jax.Array,
) -> jax.Array:
    cross = jnp.where(train_mask[:, None], model.kernel(params, x, x), 0.0)
    mean = cross.T @ alpha
    v = jax.scipy.linalg.solve_triangular(chol, cross, lower=True)
    prior = jnp.diagonal(model.kernel(params, x, x))
    var = jnp.maximum(prior - jnp.sum(v**2, axis=0), 1e-9) + params["noise"]
    nll = 0.5 * (jnp.log(2.0 * math.pi * var) + (y - mean) ** 2 / var)
    value = jnp.sum(jnp.where(val_mask, nll, 0.0)) / jnp.maximum(jnp.sum(val_mask), 1)
    return jnp.where(jnp.isfinite(value), value, _BAD)


@partial(jax.jit, static_argnames=("model", "settings"))
def _train(
    model: ExactGP,
    settings: DKLSettings,
    raw0: Params,
    x: jax.Array,
    y: jax.Array,
    train_mask: jax.Array,
    val_mask: jax.Array,
    anchor: jax.Array,
) -> tuple[Params, jax.Array, jax.Array, jax.Array]:
    """Adam until ``settings.steps`` or early stopping, whichever comes first.

    The loss is the training rows' mean negative log marginal likelihood, plus, with
    ``settings.prior_std``, the Gaussian prior's ``|net - anchor|^2 / (2 prior_std^2)`` over
    the same rows (a maximum a-posteriori fit).

    A ``while_loop``, so a fit that stops early also stops computing (pre-training on a few
    hundred rows typically stops after 200-350 of its 600 steps). Each step factorises the
    training rows' covariance once, for the loss, its gradient and the held-out loss.
    """
    labels = {name: "net" if name == "net" else "gp" for name in raw0}
    opt = optax.multi_transform(
        {"net": optax.adam(settings.lr_net), "gp": optax.adam(settings.lr_gp)}, labels
    )
    has_val = jnp.any(val_mask)
    n = jnp.maximum(jnp.sum(train_mask), 1)

    def train_loss(raw: Params) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        params = constrain(model.specs, raw)
        chol, alpha = _factor_impl(model, params, x, y, train_mask)
        nll = nll_from_factor(y, train_mask, chol, alpha)
        if settings.prior_std is not None:
            nll = nll + 0.5 * jnp.sum((raw["net"] - anchor) ** 2) / settings.prior_std**2
        nll = nll / n
        return jnp.where(jnp.isfinite(nll), nll, _BAD), (chol, alpha)

    def running(carry) -> jax.Array:
        i, *_, stopped, _, _ = carry
        return (i < settings.steps) & ~stopped

    def step(carry):
        i, raw, state, best_raw, best_val, best_step, stopped, losses, vals = carry
        (loss, (chol, alpha)), grad = jax.value_and_grad(train_loss, has_aux=True)(raw)
        params = constrain(model.specs, raw)
        held = _heldout_from_factor(model, params, x, y, train_mask, val_mask, chol, alpha)
        val = jnp.where(has_val, held, loss)
        better = val < best_val
        best_raw = jax.tree.map(lambda b, r: jnp.where(better, r, b), best_raw, raw)
        best_val = jnp.where(better, val, best_val)
        best_step = jnp.where(better, i, best_step)
        stopped = i - best_step > settings.patience
        grad = jax.tree.map(lambda g: jnp.where(jnp.isfinite(g), g, 0.0), grad)
        updates, state = opt.update(grad, state, raw)
        raw = optax.apply_updates(raw, updates)
        losses = losses.at[i].set(loss)
        vals = vals.at[i].set(jnp.where(stopped, jnp.inf, val))
        return i + 1, raw, state, best_raw, best_val, best_step, stopped, losses, vals

    carry = (
        jnp.asarray(0),
        raw0,
        opt.init(raw0),
        raw0,
        jnp.asarray(jnp.inf),
        jnp.asarray(0),
        jnp.asarray(False),
        jnp.full(settings.steps, jnp.nan),
        jnp.full(settings.steps, jnp.inf),
    )
    carry = jax.lax.while_loop(running, step, carry)
    *_, best_raw, _, best_step, _, losses, vals = carry
    return best_raw, losses, vals, best_step


def pooled_rows(
    blocks: Sequence[tuple[np.ndarray, np.ndarray]], limit: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate ``(x, y)`` blocks, subsampled uniformly to at most ``limit`` rows."""
    x = np.concatenate([b[0] for b in blocks])
    y = np.concatenate([b[1] for b in blocks])
    if x.shape[0] > limit:
        keep = np.sort(rng.choice(x.shape[0], limit, replace=False))
        x, y = x[keep], y[keep]
    return x, y

"""The posterior an acquisition function reads: a fitted GP with an optional mean function.

Every PB2-family surrogate ends in a `Posterior`, whatever its model (a GP, a multi-task
GP, a deep-kernel GP, or a GP on the residual of a meta-learned prior mean): acquisitions see
``mean(x)`` and ``var(x)`` only, so a new model needs no new acquisition and vice versa.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from metapbt.surrogates.gp import FittedGP, predict
from metapbt.surrogates.transfer import MetaTerms, prior_mean


@partial(
    jax.tree_util.register_dataclass,
    data_fields=["gp", "pending_gp", "scale", "offset", "prior", "variance_gp"],
    meta_fields=[],
)
@dataclass(frozen=True)
class Posterior:
    """``mean(x) = scale * gp_mean(x) + offset + prior(x)``, ``var(x) = scale**2 * gp_var(x)``.

    A pytree: the acquisition optimiser traces it, so new data never recompiles.

    Attributes:
        gp: The GP conditioned on the training rows (its mean is used).
        pending_gp: The same GP also conditioned on the round's pending inputs (label 0): its
            variance is used (GP-BUCB), its mean is not.
        scale: Factor of the GP's mean and standard deviation (1 for a plain GP).
        offset: Added to the mean (0 for a plain GP).
        prior: A weighted meta-task prior mean (MetaPrior-PB2), or ``None``.
        variance_gp: The GP whose variance is used, before pending points (``gp`` itself
            unless another model supplies the variance, as a plain GP does for a deep
            kernel's mean in the metaPBT reference).
    """

    gp: FittedGP
    pending_gp: FittedGP
    scale: jax.Array
    offset: jax.Array
    prior: MetaTerms | None = None
    variance_gp: FittedGP | None = None

    @classmethod
    def of(
        cls,
        gp: FittedGP,
        scale: float = 1.0,
        offset: float = 0.0,
        prior: MetaTerms | None = None,
        variance_gp: FittedGP | None = None,
    ) -> Posterior:
        """The posterior of ``gp`` (its variance from ``variance_gp`` if given), no pending."""
        f32 = partial(jnp.asarray, dtype=jnp.float32)
        variance_gp = gp if variance_gp is None else variance_gp
        return cls(gp, variance_gp, f32(scale), f32(offset), prior, variance_gp)

    def with_pending(self, pending_x: np.ndarray) -> Posterior:
        """The same posterior whose variance also conditions on ``pending_x [p, D]``."""
        source = self.gp if self.variance_gp is None else self.variance_gp
        return replace(self, pending_gp=source.with_pending(pending_x))

    def noise(self) -> float:
        """Observation noise variance on the posterior's scale (of the variance's GP)."""
        source = self.gp if self.variance_gp is None else self.variance_gp
        return float(source.params["noise"]) * float(self.scale) ** 2


def posterior_predict(post: Posterior, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean ``[q]`` and latent variance ``[q]`` of ``post`` at ``x [q, D]`` (pure JAX)."""
    mean = predict(post.gp, x)[0] * post.scale + post.offset
    if post.prior is not None:
        mean = mean + prior_mean(post.prior, x)
    var = predict(post.pending_gp, x)[1] * post.scale**2
    return mean, var

"""RGPE task weights from a bootstrapped pairwise ranking loss (Feurer et al.)."""

from __future__ import annotations

import numpy as np

from metapbt.errors import ConfigError


def ranking_loss(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Misranked ordered pairs: ``sum_{j,k} [(pred_j < pred_k) xor (y_j < y_k)]``.

    Args:
        pred: ``[..., n]`` predictions (leading axes are batched).
        y: ``[..., n]`` observed targets.

    Returns:
        ``[...]`` integer losses.
    """
    p = pred[..., :, None] < pred[..., None, :]
    t = y[..., :, None] < y[..., None, :]
    return np.sum(p ^ t, axis=(-2, -1))


def target_ranking_loss(
    loo: np.ndarray, y: np.ndarray, same: np.ndarray | None = None
) -> np.ndarray:
    """The target model's loss: ``sum_{j,k} [(loo_j < y_k) xor (y_j < y_k)]``.

    ``loo`` holds leave-one-out predictions of the target model at its own rows. Pairs marked
    in ``same`` (a row compared with itself, including bootstrap duplicates) are skipped: a meta
    model can never misrank such a pair, but ``loo_j < y_j`` would count against the target about
    half the time, so the reference's form (which counts them) biased the weights against it.
    """
    wrong = (loo[..., :, None] < y[..., None, :]) ^ (y[..., :, None] < y[..., None, :])
    if same is not None:
        wrong = wrong & ~same
    return np.sum(wrong, axis=(-2, -1))


def rgpe_weights(
    predictions: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    samples: int = 100,
    loo: np.ndarray | None = None,
) -> np.ndarray:
    """Weights of the meta models (and optionally the target) by bootstrapped ranking loss.

    For each of ``samples`` bootstrap resamples of the target's rows, every model's ranking loss
    is computed; the models with the smallest loss share that sample's unit of weight equally.

    Args:
        predictions: ``[M, n]`` meta-model predictions at the target's rows (target scale).
        y: ``[n]`` the target's (standardised) observations.
        rng: Generator of the bootstrap indices.
        samples: Number of bootstrap samples.
        loo: ``[n]`` leave-one-out predictions of the target model, to include it as the last
            weight.

    Returns:
        ``[M]`` (or ``[M + 1]`` with ``loo``) weights summing to 1.
    """
    predictions = np.atleast_2d(np.asarray(predictions, np.float64))
    y = np.asarray(y, np.float64)
    n = y.shape[0]
    if predictions.shape[1] != n or n == 0:
        raise ConfigError(f"predictions {predictions.shape} do not match {n} observations")
    if samples < 1:
        raise ConfigError(f"samples must be at least 1, got {samples}")
    boot = rng.integers(0, n, size=(samples, n))
    yb = y[boot]  # [S, n]
    losses = ranking_loss(predictions[:, boot], yb[None]).T  # [S, M]
    if loo is not None:
        same = boot[:, :, None] == boot[:, None, :]
        target = target_ranking_loss(np.asarray(loo, np.float64)[boot], yb, same)
        losses = np.column_stack([losses, target])
    best = losses == losses.min(axis=1, keepdims=True)
    return (best / best.sum(axis=1, keepdims=True)).mean(axis=0)

"""Separate policy and value networks (flax), for discrete and continuous actions.

Each network is a torso and a linear head: an MLP over vector observations, or a small CNN
(MinAtar's: one 3x3 convolution of 16 channels) before the MLP over image observations
``[H, W, C]`` (`torso_for`). Other shapes are flattened by a wrapper before they get here
(`metapbt.envs.wrappers`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:
    import distrax


def bounds_scaling(
    low: np.ndarray, high: np.ndarray
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Center and scale that map each finite ``[low, high]`` dimension onto ``[-1, 1]``.

    Unbounded dimensions (an infinite or huge bound, as CartPole's velocities) pass unchanged.
    """
    low = np.broadcast_to(np.asarray(low, np.float64), np.shape(high)).ravel()
    high = np.asarray(high, np.float64).ravel()
    finite = np.isfinite(low) & np.isfinite(high)
    low, high = np.where(finite, low, 0.0), np.where(finite, high, 0.0)
    finite &= (high - low < 1e6) & (high > low)
    center = np.where(finite, (low + high) / 2, 0.0)
    scale = np.where(finite, (high - low) / 2, 1.0)
    return tuple(float(c) for c in center), tuple(float(s) for s in scale)


OBS_STATS = "obs_stats"
"""The variable collection of the running observation statistics (``normalize_obs``)."""
OBS_CLIP = 10.0
"""Normalised observations are clipped to ``[-OBS_CLIP, OBS_CLIP]`` (RLlib's MeanStdFilter)."""


def update_obs_stats(params: dict, obs: jax.Array) -> dict:
    """Merge a batch ``obs [..., obs_dim]`` into the running statistics held in ``params``.

    Chan et al.'s parallel update of count, mean and (population) variance, so the result
    equals the statistics of every observation seen so far. ``params`` without statistics (a
    network with ``normalize_obs`` off) is returned unchanged.
    """
    if OBS_STATS not in params:
        return params
    stats = params[OBS_STATS]
    x = obs.reshape(-1, obs.shape[-1]).astype(jnp.float32)
    n, batch = stats["count"], jnp.float32(x.shape[0])
    total = n + batch
    delta = x.mean(0) - stats["mean"]
    mean = stats["mean"] + delta * batch / total
    var = (stats["var"] * n + x.var(0) * batch + delta**2 * n * batch / total) / total
    return {**params, OBS_STATS: {"count": total, "mean": mean, "var": var}}


TORSOS = ("mlp", "cnn")
"""The torsos: an MLP over vectors, a CNN then the MLP over images."""


def torso_for(obs_shape: Sequence[int]) -> str:
    """``"cnn"`` for image observations ``[H, W, C]``, ``"mlp"`` for vectors."""
    from metapbt.envs.wrappers import is_image

    return "cnn" if is_image(tuple(obs_shape)) else "mlp"


class ConvTorso(nn.Module):
    """MinAtar's torso: a 3x3 convolution of ``channels`` (ReLU), flattened.

    Takes ``[..., H, W, C]`` and returns ``[..., H * W * channels]``.
    """

    channels: int = 16

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Features of the images ``x [..., H, W, C]``."""
        lead = x.shape[:-3]
        y = x.reshape((-1, *x.shape[-3:]))
        # The convolution as patches times a dense kernel: vmapped over members (each its own
        # kernel) XLA's CPU convolution runs about 40x slower than this batched matmul.
        patches = jax.lax.conv_general_dilated_patches(
            y, (3, 3), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        y = nn.relu(nn.Dense(self.channels, name="conv")(patches))
        return y.reshape((*lead, -1))


def _mlp(
    x: jax.Array,
    hidden: Sequence[int],
    activation: str,
    out: int,
    out_scale: float,
    torso: str = "mlp",
) -> jax.Array:
    act = nn.tanh if activation == "tanh" else nn.relu
    if torso == "cnn":
        x = ConvTorso()(x)
    for width in hidden:
        x = act(nn.Dense(width, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(x))
    return nn.Dense(out, kernel_init=nn.initializers.orthogonal(out_scale))(x)


class ActorCritic(nn.Module):
    """Policy and value networks with no shared layers.

    Attributes:
        action_dim: Number of discrete actions, or the continuous action dimension.
        continuous: Gaussian policy with a state-independent log std if true.
        hidden: Hidden layer sizes of each network.
        activation: ``"tanh"`` or ``"relu"``.
        obs_center: Subtracted from every observation before the networks (``None``: none).
        obs_scale: Then divided by (``None``: 1).
        normalize_obs: Standardise observations with running statistics (count, mean,
            variance in the ``obs_stats`` collection, updated by `update_obs_stats`,
            never by gradients), then clip to ``[-OBS_CLIP, OBS_CLIP]``.
        torso: ``"mlp"`` (vector observations) or ``"cnn"`` (images, `ConvTorso`
            before the MLP).
        obs_ndim: Dimensions of one observation (an image's 3); the MLP torso flattens them.
    """

    action_dim: int
    continuous: bool
    hidden: tuple[int, ...]
    activation: str
    obs_center: tuple[float, ...] | None = None
    obs_scale: tuple[float, ...] | None = None
    normalize_obs: bool = False
    torso: str = "mlp"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[distrax.Distribution, jax.Array]:
        """Action distribution and value for ``obs [..., obs_dim]`` (``[..., H, W, C]``: CNN)."""
        # Imported here: distrax loads TensorFlow Probability's JAX substrate (0.6-0.9 s here),
        # which every process importing the package paid, training PPO or not.
        import distrax

        if self.torso == "mlp" and self.obs_ndim > 1:
            obs = obs.reshape((*obs.shape[: -self.obs_ndim], -1))
        if self.obs_center is not None:
            obs = obs - jnp.asarray(self.obs_center, obs.dtype)
        if self.obs_scale is not None:
            obs = obs / jnp.asarray(self.obs_scale, obs.dtype)
        if self.normalize_obs:
            shape = (obs.shape[-1],)
            # The count is declared here but read only by update_obs_stats.
            self.variable(OBS_STATS, "count", lambda: jnp.zeros((), jnp.float32))
            mean = self.variable(OBS_STATS, "mean", lambda: jnp.zeros(shape, jnp.float32))
            var = self.variable(OBS_STATS, "var", lambda: jnp.ones(shape, jnp.float32))
            centred = obs - jax.lax.stop_gradient(mean.value)
            scaled = centred / jnp.sqrt(jax.lax.stop_gradient(var.value) + 1e-8)
            obs = jnp.clip(scaled, -OBS_CLIP, OBS_CLIP)
        logits = _mlp(obs, self.hidden, self.activation, self.action_dim, 0.01, self.torso)
        value = _mlp(obs, self.hidden, self.activation, 1, 1.0, self.torso)[..., 0]
        if self.continuous:
            log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
            return distrax.MultivariateNormalDiag(logits, jnp.exp(log_std)), value
        return distrax.Categorical(logits=logits), value


ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "swish": nn.swish}
"""The hidden layers' activations by name."""


class QNetwork(nn.Module):
    """Action values of discrete actions: a torso, an MLP, and a linear (or dueling) head.

    Attributes:
        action_dim: Number of discrete actions.
        hidden: Hidden layer sizes.
        activation: A name in `ACTIVATIONS`.
        dueling: Value and advantage heads, ``Q = V + A - mean(A)`` (Wang et al., 2016).
        torso: ``"mlp"`` or ``"cnn"`` (images: `ConvTorso` first).
        obs_ndim: Dimensions of one observation; the MLP torso flattens them.
    """

    action_dim: int
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "swish"
    dueling: bool = False
    torso: str = "mlp"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        """``q [..., action_dim]`` for ``obs [..., obs_dim]`` (``[..., H, W, C]``: CNN)."""
        x = obs
        if self.torso == "cnn":
            x = ConvTorso()(x)
        elif self.obs_ndim > 1:
            x = x.reshape((*x.shape[: -self.obs_ndim], -1))
        act = ACTIVATIONS[self.activation]
        for width in self.hidden:
            x = act(nn.Dense(width)(x))
        if not self.dueling:
            return nn.Dense(self.action_dim)(x)
        value = nn.Dense(1, name="value")(x)
        advantage = nn.Dense(self.action_dim, name="advantage")(x)
        return value + advantage - advantage.mean(axis=-1, keepdims=True)

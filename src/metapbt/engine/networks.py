"""Separate policy and value MLPs (flax), for discrete and continuous actions."""

from __future__ import annotations

from collections.abc import Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def _mlp(x: jax.Array, hidden: Sequence[int], activation: str, out: int, out_scale: float):
    act = nn.tanh if activation == "tanh" else nn.relu
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
    """

    action_dim: int
    continuous: bool
    hidden: tuple[int, ...]
    activation: str

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[distrax.Distribution, jax.Array]:
        """Action distribution and value for ``obs [..., obs_dim]``."""
        logits = _mlp(obs, self.hidden, self.activation, self.action_dim, 0.01)
        value = _mlp(obs, self.hidden, self.activation, 1, 1.0)[..., 0]
        if self.continuous:
            log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
            return distrax.MultivariateNormalDiag(logits, jnp.exp(log_std)), value
        return distrax.Categorical(logits=logits), value

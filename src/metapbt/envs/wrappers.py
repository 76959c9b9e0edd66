"""Wrappers between a gymnax-API environment and the agent, in purejaxrl's style.

Each wraps ``reset(key, params)``, ``step(key, state, action, params)`` (six values: ``obs,
state, reward, terminated, truncated, info``), ``observation_space(params)`` and
``action_space(params)`` and forwards everything else to the environment it wraps, so they
compose around any environment and a context (the ``params``) passes through untouched.

- `FloatObservation`: observations as ``float32`` (MinAtar's and bsuite's are booleans
  or integers in some versions);
- `OneHotObservation`: a discrete observation (FrozenLake's cell index) as a one-hot
  vector;
- `FlattenObservation`: observations of any non-image shape as a vector (an image,
  ``[H, W, C]``, is left for the CNN torso: `metapbt.engine.networks.torso_for`);
- `ClipAction`: continuous actions clipped to the action space's bounds before the
  environment (the policy's Gaussian is not squashed; PPO keeps the unclipped sample's
  log-probability, as brax and purejaxrl do).

`standard` applies the ones an environment needs. The built-in environments are not
wrapped (their observations are vectors and their dynamics clip actions themselves), so their
programs, and the histories they produce, are what they were before wrappers existed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


class Wrapper:
    """Forwards every attribute but the ones a subclass overrides to ``env``."""

    def __init__(self, env: Any) -> None:
        self._env = env

    def __getattr__(self, name: str) -> Any:
        if name == "_env":  # not set yet (copy, unpickling): never recurse
            raise AttributeError(name)
        return getattr(self._env, name)

    @property
    def unwrapped(self) -> Any:
        """The innermost environment."""
        return getattr(self._env, "unwrapped", self._env)

    def reset(self, key: Any, params: Any) -> tuple[Any, Any]:
        """Reset the wrapped environment, observation through `observation`."""
        obs, state = self._env.reset(key, params)
        return self.observation(obs), state

    def step(self, key: Any, state: Any, action: Any, params: Any) -> tuple[Any, ...]:
        """Step the wrapped env with `action`; the observation through `observation`."""
        obs, state, reward, terminated, truncated, info = self._env.step(
            key, state, self.action(action, params), params
        )
        return self.observation(obs), state, reward, terminated, truncated, info

    def observation(self, obs: Any) -> Any:
        """The observation the agent sees (identity here)."""
        return obs

    def action(self, action: Any, params: Any) -> Any:
        """The action the environment gets (identity here)."""
        return action

    def observation_space(self, params: Any) -> Any:
        """The wrapped environment's observation space."""
        return self._env.observation_space(params)

    def action_space(self, params: Any) -> Any:
        """The wrapped environment's action space."""
        return self._env.action_space(params)


@dataclass(frozen=True)
class VectorSpace:
    """A continuous space of a wrapper's making: ``low``, ``high``, ``shape`` (as gymnax's Box)."""

    low: Any
    high: Any
    shape: tuple[int, ...]
    dtype: Any = np.float32


class FloatObservation(Wrapper):
    """Observations as ``float32``."""

    def observation(self, obs: Any) -> Any:
        """``obs`` cast to ``float32``."""
        return jnp.asarray(obs, jnp.float32)


class OneHotObservation(Wrapper):
    """Discrete observations ``i`` in ``0..n-1`` as one-hot vectors ``[n]``."""

    def __init__(self, env: Any, n: int) -> None:
        super().__init__(env)
        self._n = n

    def observation(self, obs: Any) -> Any:
        """``obs`` one-hot encoded."""
        return jax.nn.one_hot(jnp.asarray(obs, jnp.int32), self._n, dtype=jnp.float32)

    def observation_space(self, params: Any) -> VectorSpace:
        """``[0, 1]^n``."""
        return VectorSpace(np.zeros(self._n, np.float32), np.ones(self._n, np.float32), (self._n,))


class FlattenObservation(Wrapper):
    """Observations ``[*shape]`` as vectors ``[prod(shape)]``."""

    def observation(self, obs: Any) -> Any:
        """``obs`` flattened."""
        return jnp.reshape(obs, (-1,))

    def observation_space(self, params: Any) -> VectorSpace:
        """The wrapped space, flattened (bounds broadcast to its shape first)."""
        space = self._env.observation_space(params)
        shape = tuple(space.shape)
        low = np.broadcast_to(np.asarray(space.low, np.float32), shape).ravel()
        high = np.broadcast_to(np.asarray(space.high, np.float32), shape).ravel()
        return VectorSpace(low, high, (int(np.prod(shape)),))


class ClipAction(Wrapper):
    """Continuous actions clipped to the action space's ``[low, high]``."""

    def action(self, action: Any, params: Any) -> Any:
        """``action`` clipped to the bounds of the action space under ``params``."""
        space = self._env.action_space(params)
        return jnp.clip(action, jnp.asarray(space.low), jnp.asarray(space.high))


def is_image(shape: tuple[int, ...]) -> bool:
    """Whether an observation of ``shape`` is an image ``[H, W, C]`` (the CNN torso's input)."""
    return len(shape) == 3 and min(shape[:2]) >= 3


def standard(env: Any, params: Any) -> Any:
    """``env`` with the wrappers it needs: float observations, flattening, action clipping.

    A discrete observation becomes one-hot; other observations become ``float32``, and a
    non-vector, non-image one is flattened; a continuous action space with finite bounds gets
    its actions clipped.
    """
    obs_space = env.observation_space(params)
    if hasattr(obs_space, "n"):
        return OneHotObservation(env, int(obs_space.n))
    wrapped: Any = FloatObservation(env)
    shape = tuple(obs_space.shape)
    if len(shape) != 1 and not is_image(shape):
        wrapped = FlattenObservation(wrapped)
    space = env.action_space(params)
    if not hasattr(space, "n"):
        low, high = np.asarray(space.low), np.asarray(space.high)
        if np.all(np.isfinite(low)) and np.all(np.isfinite(high)):
            wrapped = ClipAction(wrapped)
    return wrapped

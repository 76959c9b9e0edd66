"""navix grid worlds (MiniGrid in JAX) behind the gymnax interface: ``navix:<id>``.

``pip install -e ".[navix]"``. Of the JAX environment libraries beside gymnax and brax, navix
fits this engine best: its environments are pure functions of a key and a timestep (the whole
episode jits and vmaps, as gymnax's), and they carry their numeric settings as fields. jumanji
builds its tasks from generator objects and returns nested observations; xminigrid is not on
this machine's package index.

`NavixGymnax` adapts ``reset(key) -> Timestep`` / ``step(timestep, action) ->
Timestep`` to gymnax's ``reset(key, params)`` / ``step(key, state, action, params)`` with six
values. navix resets a finished episode on the *next* call to ``step`` (a separate transition
with no reward); the adapter resets in the same step, as gymnax does, so a rollout never holds
that extra transition. Observations are navix's (its default: a symbolic ``[H, W, 3]`` grid,
an image for the CNN torso); the seven MiniGrid actions are discrete.

Contexts: ``penality_coeff``, the share of the return a slow success loses (navix's reward at
termination is reduced by ``penality_coeff * t / max_steps``; 0 by default), traced per member.
The grid's size is the environment's id (``Navix-Empty-5x5-v0`` against ``-8x8-``), not a
context: it sets the observation's shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metapbt.envs.wrappers import VectorSpace
from metapbt.errors import ConfigError, UnknownNameError


@partial(
    jax.tree_util.register_dataclass,
    data_fields=["penality_coeff"],
    meta_fields=["max_steps_in_episode"],
)
@dataclass(frozen=True)
class NavixParams:
    """A navix environment's context (``penality_coeff``) and its time limit (static)."""

    penality_coeff: float
    max_steps_in_episode: int


@dataclass(frozen=True)
class Discrete:
    """``n`` discrete actions (as gymnax's ``Discrete``)."""

    n: int
    shape: tuple[int, ...] = ()


class NavixGymnax:
    """A navix environment with gymnax's interface (see the module docstring)."""

    def __init__(self, env: Any) -> None:
        self.env = env

    @property
    def default_params(self) -> NavixParams:
        """Navix's own settings."""
        return NavixParams(float(self.env.penality_coeff), int(self.env.max_steps))

    def _with(self, params: NavixParams) -> Any:
        # navix reads the coefficient as a Python attribute when traced: a traced value works.
        return self.env.replace(penality_coeff=params.penality_coeff)

    def reset(self, key: Any, params: NavixParams) -> tuple[Any, Any]:
        """A new episode: ``(obs, timestep)``."""
        timestep = self._with(params).reset(key)
        return timestep.observation, timestep

    def step(
        self, key: Any, state: Any, action: Any, params: NavixParams
    ) -> tuple[Any, Any, Any, Any, Any, dict]:
        """One step; a finished episode is replaced by a fresh one drawn from ``key``."""
        env = self._with(params)
        nxt = env._step(state, action)
        terminated = nxt.step_type == 2
        truncated = nxt.step_type == 1
        fresh = env.reset(key)
        chosen = jax.tree.map(lambda a, b: jnp.where(terminated | truncated, a, b), fresh, nxt)
        return chosen.observation, chosen, nxt.reward, terminated, truncated, {}

    def action_space(self, params: NavixParams) -> Discrete:
        """MiniGrid's discrete actions."""
        return Discrete(len(self.env.action_set))

    def observation_space(self, params: NavixParams) -> VectorSpace:
        """Navix's observation shape, bounded by its space."""
        space = self.env.observation_space
        shape = tuple(int(s) for s in space.shape)
        low = np.broadcast_to(np.asarray(space.minimum, np.float32), shape)
        high = np.broadcast_to(np.asarray(space.maximum, np.float32), shape)
        return VectorSpace(low, high, shape)


def navix_build(env_id: str, name: str) -> Any:
    """A zero-argument factory of ``(NavixGymnax, NavixParams)`` for navix's ``name``.

    Raises:
        ConfigError: If navix is not installed.
        UnknownNameError: If navix has no environment ``name``.
    """
    try:
        import navix
    except ImportError:
        raise ConfigError(f"{env_id} needs navix: pip install -e '.[navix]'") from None
    known = list(navix.registry())
    if name not in known:
        raise UnknownNameError(f"unknown navix env {name!r} in {env_id!r}; navix has: {known}")

    def build() -> tuple[NavixGymnax, NavixParams]:
        env = NavixGymnax(navix.make(name))
        return env, env.default_params

    return build

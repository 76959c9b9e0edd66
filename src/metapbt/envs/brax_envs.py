"""Brax robots under a gravity context, behind the gymnax interface the JAX trainer steps.

Nine environments of the Meta-PB2 evaluation (``pip install -e ".[brax]"``). A context sets the
vertical gravity (m/s^2, negative: down); the planets give the reference's absolute values
-8.7 (uranus), -8.9 (venus), -9.0 (saturn), -9.81 (earth), -11.0 (neptune).

**Gravity must reach the physics.** The reference had to patch CARL, whose Brax gravity was
written to the wrong object after the step function had been compiled (CARL #126, #137). In brax
0.14 the spring, positional and generalized pipelines read ``sys.gravity`` and the mjx pipeline
reads ``sys.opt.gravity``: `with_gravity` sets both (float32) on the innermost environment
(``env.unwrapped``) before anything is traced. A trainer holds one context, so gravity is a
compile-time constant of its programs, as every other env parameter is
(docs/guides/studies.md, "Batches").

`BraxGymnax` adapts a brax environment to gymnax's ``reset(key, params)`` /
``step(key, state, action, params)`` with its own time limit (a truncation) and an automatic
reset that draws a fresh random start (brax's ``AutoResetWrapper`` replays one cached start per
slot). Actions are clipped to [-1, 1] before the physics (the policy's Gaussian is not squashed;
PPO keeps the log-probability of the unclipped sample).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from metapbt.envs.contexts import Feature
from metapbt.errors import ConfigError

EPISODE_LENGTH = 1000
"""Steps per episode (a truncation), brax's default; the reference also set a 2000 horizon."""
BACKEND = "spring"
"""The physics pipeline, the reference's."""
GRAVITY = Feature(-9.81, -30.0, -0.01, "vertical gravity (m/s^2, negative is down)")


@dataclass(frozen=True)
class BraxEnvSpec:
    """A Brax environment family with a gravity context.

    Attributes:
        id: Registry id, e.g. ``"hopper"``.
        brax_name: Its name in ``brax.envs`` (``humanoidstandup`` for ``humanoid_standup``).
        features: The context features (gravity).
        gravity_features: Features a planet sets (gravity, as the default times the planet's
            factor: the planets' absolute gravities).
        episode_length: Steps per episode.
        backend: brax physics pipeline.
        solved: No usual solved level.
        trainer: The in-JAX population trainer (class attribute).
        family: ``"brax"`` (class attribute; the presets meant for it say so).
    """

    trainer: ClassVar[str] = "jax"
    family: ClassVar[str] = "brax"
    mixes_contexts: ClassVar[bool] = (
        False  # gravity lives in the physics system, set before compiling
    )

    id: str
    brax_name: str
    features: Mapping[str, Feature] = field(
        default_factory=lambda: MappingProxyType({"gravity": GRAVITY})
    )
    gravity_features: tuple[str, ...] = ("gravity",)
    episode_length: int = EPISODE_LENGTH
    backend: str = BACKEND
    solved: float | None = None

    def make(self, context: Mapping[str, float]) -> tuple[BraxGymnax, BraxParams]:
        """The environment under a full context, behind the gymnax interface.

        Its gravity is set in the physics before anything is traced.
        """
        return make_brax(self, context)

    def make_host(self, context: Mapping[str, float]) -> Any:
        """Not a host environment: raises [`ConfigError`][metapbt.errors.ConfigError]."""
        raise ConfigError(f"{self.id} is a Brax environment that steps in JAX: use envs.make()")


BRAX: tuple[BraxEnvSpec, ...] = tuple(
    BraxEnvSpec(id_, name)
    for id_, name in (
        ("humanoid", "humanoid"),
        ("halfcheetah", "halfcheetah"),
        ("hopper", "hopper"),
        ("humanoid_standup", "humanoidstandup"),
        ("inverted_double_pendulum", "inverted_double_pendulum"),
        ("inverted_pendulum", "inverted_pendulum"),
        ("pusher", "pusher"),
        ("reacher", "reacher"),
        ("walker2d", "walker2d"),
    )
)
"""The nine robots of the Meta-PB2 Brax evaluation."""


def brax_envs() -> Any:
    """``brax.envs``, or a ConfigError that says how to install it."""
    try:
        from brax import envs
    except ImportError:
        raise ConfigError("the Brax environments need brax: pip install -e '.[brax]'") from None
    return envs


def with_gravity(env: Any, gravity: float) -> Any:
    """Set the vertical (z) gravity of ``env``'s physics, for every backend; returns ``env``.

    Both copies are written (``sys.gravity``: spring, positional, generalized;
    ``sys.opt.gravity``: mjx), on the innermost environment, which its ``step`` reads when it
    is traced. Call it before any function of the environment is compiled.
    """
    inner = env.unwrapped
    for name in ("gravity", "opt.gravity"):  # only z: inverted_double_pendulum has x = 1e-5
        old = inner.sys.gravity if name == "gravity" else inner.sys.opt.gravity
        g = jnp.asarray(old, jnp.float32).at[2].set(jnp.float32(gravity))
        inner.sys = inner.sys.tree_replace({name: g})
    return env


def make_brax(spec: BraxEnvSpec, context: Mapping[str, float]) -> tuple[BraxGymnax, BraxParams]:
    """The environment of ``spec`` under a full context, behind the gymnax interface."""
    env = brax_envs().get_environment(spec.brax_name, backend=spec.backend)
    with_gravity(env, context["gravity"])
    return BraxGymnax(env), BraxParams(spec.episode_length)


@partial(jax.tree_util.register_dataclass, data_fields=[], meta_fields=["max_steps_in_episode"])
@dataclass(frozen=True)
class BraxParams:
    """The gymnax-style params of a Brax environment (the context lives in its physics).

    A pytree without leaves (its one field is static), so jitted and vmapped functions take it
    as gymnax params.
    """

    max_steps_in_episode: int


@dataclass(frozen=True)
class Box:
    """A continuous space: ``shape``, ``low`` and ``high`` (as gymnax's ``Box``)."""

    low: Any
    high: Any
    shape: tuple[int, ...]


class BraxGymnax:
    """A brax environment with gymnax's interface, a time limit and fresh random resets.

    The state is ``(brax_state, steps)``; ``step`` returns ``(obs, state, reward, terminated,
    truncated, info)`` and, when the episode ends, the next episode's first observation and
    state (as gymnax does).
    """

    def __init__(self, env: Any) -> None:
        self.env = env

    def reset(self, key: Any, params: BraxParams) -> tuple[Any, tuple[Any, Any]]:
        """A new episode: ``(obs, state)``."""
        state = self.env.reset(key)
        return state.obs, (state, jnp.int32(0))

    def step(
        self, key: Any, state: tuple[Any, Any], action: Any, params: BraxParams
    ) -> tuple[Any, tuple[Any, Any], Any, Any, Any, dict]:
        """One step; a finished episode is replaced by a fresh one drawn from ``key``."""
        brax_state, steps = state
        nxt = self.env.step(brax_state, jnp.clip(action, -1.0, 1.0))
        steps = steps + 1
        terminated = nxt.done > 0.5
        truncated = jnp.logical_and(steps >= params.max_steps_in_episode, ~terminated)
        done = jnp.logical_or(terminated, truncated)
        fresh = self.env.reset(key)
        chosen = jax.tree.map(lambda a, b: jnp.where(done, a, b), fresh, nxt)
        steps = jnp.where(done, 0, steps)
        return chosen.obs, (chosen, steps), nxt.reward, terminated, truncated, {}

    def action_space(self, params: BraxParams) -> Box:
        """Actions in [-1, 1]^action_size."""
        n = int(self.env.action_size)
        return Box(-np.ones(n, np.float32), np.ones(n, np.float32), (n,))

    def observation_space(self, params: BraxParams) -> Box:
        """Unbounded observations of the environment's size."""
        n = int(self.env.observation_size)
        return Box(np.full(n, -np.inf, np.float32), np.full(n, np.inf, np.float32), (n,))

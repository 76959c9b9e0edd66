"""The contract an environment must keep, checked before anything trains on it.

A gymnax-API environment is traced once, abstractly (`jax.eval_shape`: nothing is
computed), through ``reset`` and one ``step`` under its default context: that catches a wrong
``step`` arity, Python control flow on traced values, an observation that is not the shape its
space declares, an action space that is neither discrete nor a box, and a missing time limit.
A gymnasium environment is built and its spaces checked. Every error names the environment
and what is wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metapbt.envs.wrappers import is_image
from metapbt.errors import ConfigError


def default_context(spec: Any) -> dict[str, float]:
    """Every feature of ``spec`` at its default."""
    return {name: f.default for name, f in spec.features.items()}


def check_jax(spec: Any) -> None:
    """Raise unless ``spec``'s environment keeps the gymnax-API contract.

    Raises:
        ConfigError: Naming ``spec.id`` and the broken part.
    """
    import jax

    env, params = spec.make(default_context(spec))
    spec.horizon(params)
    action_space = _space(spec.id, "action_space", env, params)
    obs_space = _space(spec.id, "observation_space", env, params)
    if not hasattr(action_space, "n") and not hasattr(action_space, "shape"):
        raise ConfigError(f"env {spec.id!r}: its action space is neither discrete nor a box")
    key = jax.random.PRNGKey(0)
    try:
        obs, state = jax.eval_shape(env.reset, key, params)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"env {spec.id!r}: reset(key, params) fails when traced: {_first_line(err)}"
        ) from err
    if hasattr(action_space, "n"):
        action = jax.ShapeDtypeStruct((), np.int32)
    else:
        action = jax.ShapeDtypeStruct(tuple(action_space.shape), np.float32)
    raw = getattr(env, "unwrapped", env)  # the arity is the env's, not our wrappers'
    for stepper in (raw, env):
        try:
            out = jax.eval_shape(stepper.step, key, state, action, params)
        except (TypeError, ValueError) as err:
            raise ConfigError(
                f"env {spec.id!r}: step(key, state, action, params) fails when traced: "
                f"{_first_line(err)}"
            ) from err
        if not isinstance(out, tuple) or len(out) != 6:
            got = len(out) if isinstance(out, tuple) else type(out).__name__
            raise ConfigError(
                f"env {spec.id!r}: step returned {got} values; the gymnax API (>= 1.0) returns "
                "6: (obs, state, reward, terminated, truncated, info)"
            )
    _check_obs(spec.id, obs.shape, tuple(obs_space.shape))
    if out[2].shape != ():
        raise ConfigError(f"env {spec.id!r}: step's reward has shape {out[2].shape}, not ()")


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _space(env_id: str, name: str, env: Any, params: Any) -> Any:
    try:
        return getattr(env, name)(params)
    except (TypeError, AttributeError) as err:
        raise ConfigError(f"env {env_id!r}: {name}(params) fails: {err}") from err


def _check_obs(env_id: str, shape: tuple[int, ...], declared: tuple[int, ...]) -> None:
    if tuple(shape) != tuple(declared):
        raise ConfigError(
            f"env {env_id!r}: observations have shape {tuple(shape)}, its observation space "
            f"declares {tuple(declared)}"
        )
    if len(shape) != 1 and not is_image(tuple(shape)):
        raise ConfigError(
            f"env {env_id!r}: the networks take vectors or images [H, W, C], and its "
            f"observations have shape {tuple(shape)} after the wrappers"
        )


def check_host(spec: Any) -> None:
    """Raise unless ``spec``'s gymnasium environment has spaces the host trainer takes.

    Raises:
        ConfigError: Naming ``spec.id``: a space that is neither discrete nor a box, an
            observation that is not a box, or no time limit.
    """
    from gymnasium import spaces

    try:
        env = spec.make_host(default_context(spec))
    except ImportError as err:  # gymnasium's DependencyNotInstalled is one
        raise ConfigError(f"env {spec.id!r} cannot be made here: {err}") from None
    try:
        if not isinstance(env.action_space, spaces.Discrete | spaces.Box):
            raise ConfigError(
                f"env {spec.id!r}: the host trainer takes Discrete or Box actions, got "
                f"{env.action_space}"
            )
        if not isinstance(env.observation_space, spaces.Box):
            raise ConfigError(
                f"env {spec.id!r}: the host trainer takes Box observations, got "
                f"{env.observation_space}"
            )
        if spec.max_episode_steps is None:
            raise ConfigError(
                f"env {spec.id!r} has no time limit (evaluation plays episodes to their end): "
                "register it with max_episode_steps=N"
            )
    finally:
        env.close()

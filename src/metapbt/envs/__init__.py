"""Contextual environments: a registry id plus a context gives an environment.

Known ids: ``cart_pole``, ``mountain_car``, ``pendulum``, ``acrobot`` (gymnax: :func:`make` gives
``(env, params)`` that step inside JAX), the nine Brax robots (``hopper``, ``humanoid``, ...;
:mod:`metapbt.envs.brax_envs`, also behind :func:`make`, with a ``gravity`` context) and
``lunar_lander`` (Box2D: :func:`make_host` gives a gymnasium environment). Each spec's
``trainer`` attribute names the population trainer that fits it (``"jax"`` or ``"host"``;
:func:`metapbt.engine.factory.make_trainer` reads it).

A context is given as a planet name (``"earth"``, ``"neptune"``...: the gravity factor over 9.81
scales the features the reference scaled), as ``"name=value,..."`` text, or as a mapping;
unspecified features keep their defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from metapbt._registry import Registry
from metapbt.envs.brax_envs import BRAX, BraxEnvSpec, make_brax
from metapbt.envs.classic_control import CLASSIC_CONTROL, EnvSpec
from metapbt.envs.contexts import PLANETS, Context, parse_assignments, planet_factor
from metapbt.envs.lunar_lander import LUNAR_LANDER, HostEnvSpec
from metapbt.errors import ConfigError

ENVS: Registry[EnvSpec | HostEnvSpec | BraxEnvSpec] = Registry("environment")
for _spec in (*CLASSIC_CONTROL, *BRAX, LUNAR_LANDER):
    ENVS.register(_spec.id)(lambda _s=_spec: _s)


def spec(env_id: str) -> EnvSpec | HostEnvSpec | BraxEnvSpec:
    """The spec of ``env_id`` (unknown ids list the known ones)."""
    return ENVS.make(env_id)


def resolve_context(env_id: str, context: str | Mapping[str, float] | None = None) -> Context:
    """A full, validated context for ``env_id``.

    Raises:
        ConfigError: On unknown features, planets, or out-of-bounds values.
    """
    env = spec(env_id)
    values = {name: f.default for name, f in env.features.items()}
    if context is None or context == "":
        given: Mapping[str, float] = {}
    elif isinstance(context, str) and context in PLANETS:
        factor = planet_factor(context)
        given = {name: env.features[name].default * factor for name in env.gravity_features}
    elif isinstance(context, str):
        if "=" not in context:
            raise ConfigError(
                f"context {context!r} is neither a planet ({', '.join(PLANETS)}) "
                "nor NAME=VALUE assignments"
            )
        given = parse_assignments(context)
    else:
        given = context
    unknown = [k for k in given if k not in env.features]
    if unknown:
        raise ConfigError(
            f"{env_id} has no context features {unknown}; its features are {list(env.features)}"
        )
    values.update({k: env.features[k].check(k, v) for k, v in given.items()})
    return Context(values)


def make(env_id: str, context: str | Mapping[str, float] | None = None) -> tuple[Any, Any]:
    """Create the gymnax(-like) environment ``env_id`` and its params under ``context``.

    Raises:
        ConfigError: If ``env_id`` steps on the host (use :func:`make_host`).
    """
    env_spec = spec(env_id)
    if isinstance(env_spec, BraxEnvSpec):
        return make_brax(env_spec, resolve_context(env_id, context))
    import gymnax

    if isinstance(env_spec, HostEnvSpec):
        raise ConfigError(
            f"{env_id} steps on the host (Box2D), not inside JAX: create it with "
            "envs.make_host(), train it with engine.factory.make_trainer()"
        )
    env, params = gymnax.make(env_spec.gymnax_id)
    return env, env_spec.apply(params, resolve_context(env_id, context))


def make_host(env_id: str, context: str | Mapping[str, float] | None = None) -> Any:
    """Create the host (gymnasium) environment ``env_id`` under ``context``.

    Raises:
        ConfigError: If ``env_id`` is a gymnax environment (use :func:`make`).
    """
    env_spec = spec(env_id)
    if not isinstance(env_spec, HostEnvSpec):
        raise ConfigError(f"{env_id} is a gymnax environment that steps in JAX: use envs.make()")
    return env_spec.factory(resolve_context(env_id, context))


def names() -> list[str]:
    """Registered environment ids."""
    return ENVS.names()

"""Specs for environments we did not write: any gymnax-API environment, any gymnasium one.

A `GymnaxApiSpec` wraps an environment with gymnax's interface (``reset(key, params)``,
``step(key, state, action, params)`` returning six values, ``default_params``,
``observation_space(params)``, ``action_space(params)``): gymnax's own (``gymnax:<id>``), a
user's (``package.module:attr``, `metapbt.envs.register`) or another library's through an
adapter. Its context features are the numeric scalar fields of its params
(`params_features`): ``--context length=0.7,masscart=2`` writes them into the params
pytree, so the JAX trainer steps any context inside its one program, per member if they differ.

A `GymnasiumSpec` wraps a gymnasium environment (``gymnasium:<id>`` or a user's
factory), stepped on the host; its context features are the numeric keyword arguments of its
constructor (`keyword_features`).

Neither knows the physics: a derived field (gymnax CartPole's ``total_mass``) is the env
author's business, through the ``apply`` hook (params, context) -> params that runs after the
features are written.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from metapbt.envs import wrappers
from metapbt.envs.contexts import Feature
from metapbt.errors import ConfigError

GENERIC = "generic"
"""The family of every environment we did not calibrate a preset for."""

STRUCTURAL = ("max_steps_in_episode",)
"""Params fields that are not context features (the time limit shapes the evaluation loop)."""

GRAVITY_NAMES = ("gravity", "g")
"""Features a planet's gravity factor scales when an environment's author named none."""

Bounds = Mapping[str, tuple[float, float]]
ParamsUpdate = Callable[[Any, Mapping[str, float]], Any]


def _is_number(value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, int | float | np.integer | np.floating):
        return True
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    return shape == () and dtype is not None and np.issubdtype(dtype, np.number)


def params_fields(params: Any) -> dict[str, Any]:
    """The fields of a params object (a dataclass, flax/chex struct, NamedTuple or mapping).

    Raises:
        ConfigError: For any other kind of object.
    """
    if dataclasses.is_dataclass(params) and not isinstance(params, type):
        return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    if isinstance(params, tuple) and hasattr(params, "_fields"):
        return dict(params._asdict())  # type: ignore[attr-defined]  # a NamedTuple, by _fields
    if isinstance(params, Mapping):
        return dict(params)
    raise ConfigError(
        f"env params must be a dataclass (flax.struct/chex), a NamedTuple or a mapping, got "
        f"{type(params).__name__}"
    )


def params_features(
    params: Any, bounds: Bounds | None = None, docs: Mapping[str, str] | None = None
) -> Mapping[str, Feature]:
    """Every numeric scalar field of ``params`` as a context feature (defaults from ``params``).

    Booleans, arrays and `STRUCTURAL` fields are not features. ``bounds`` and ``docs``
    give a feature's bounds and description (others are unbounded).

    Raises:
        ConfigError: If ``bounds`` names a field that is not a numeric scalar, or a default
            lies outside its bounds.
    """
    fields = params_fields(params)
    features = {
        name: Feature(
            float(value),
            doc=(docs or {}).get(name, ""),
            integer=isinstance(value, int | np.integer)
            or np.issubdtype(getattr(value, "dtype", np.float32), np.integer),
        )
        for name, value in fields.items()
        if name not in STRUCTURAL and _is_number(value)
    }
    return _bounded(features, bounds or {})


def _bounded(features: dict[str, Feature], bounds: Bounds) -> Mapping[str, Feature]:
    unknown = sorted(set(bounds) - set(features))
    if unknown:
        raise ConfigError(
            f"bounds given for {unknown}, which are not numeric context features; the "
            f"features are {sorted(features)}"
        )
    for name, (low, high) in bounds.items():
        if not low <= features[name].default <= high:
            raise ConfigError(
                f"the default {name}={features[name].default} lies outside its bounds "
                f"[{low}, {high}]"
            )
        features[name] = dataclasses.replace(features[name], low=float(low), high=float(high))
    return MappingProxyType(features)


def write_params(params: Any, context: Mapping[str, float], features: Mapping[str, Feature]) -> Any:
    """``params`` with every feature of ``context`` written in (integers as ``int``)."""
    values = {
        name: int(value) if features[name].integer else float(value)
        for name, value in context.items()
    }
    if dataclasses.is_dataclass(params) and not isinstance(params, type):
        return dataclasses.replace(params, **values)
    if isinstance(params, tuple) and hasattr(params, "_replace"):
        return params._replace(**values)
    return type(params)({**params, **values})


def gravity_features(features: Mapping[str, Feature], given: tuple[str, ...] | None) -> tuple:
    """The features a planet scales: ``given``, else the ones named as gravity."""
    if given is not None:
        missing = [n for n in given if n not in features]
        if missing:
            raise ConfigError(f"gravity features {missing} are not context features")
        return tuple(given)
    return tuple(n for n in GRAVITY_NAMES if n in features)[:1]


@dataclass(frozen=True)
class GymnaxApiSpec:
    """A gymnax-API environment as a contextual family (steps inside JAX).

    Attributes:
        id: The id it was made under (``"gymnax:Breakout-MinAtar"``, ``"mypkg.envs:ENV"``).
        build: Returns ``(env, default_params)``; called once per spec (the first `make`),
            as a mixed-context trainer makes one environment per member.
        features: Its context features (`params_features`).
        gravity_features: Features a planet's gravity factor multiplies.
        apply: Called after the features are written, for derived fields; ``None``: none.
        solved: The usual "solved" return, if any.
        max_episode_steps: The time limit when the params have no ``max_steps_in_episode``.
        wrap: Apply the standard wrappers (`metapbt.envs.wrappers.standard`).
    """

    trainer: ClassVar[str] = "jax"
    family: ClassVar[str] = GENERIC
    mixes_contexts: ClassVar[bool] = True  # a context is params: traced per member

    id: str
    build: Callable[[], tuple[Any, Any]]
    features: Mapping[str, Feature]
    gravity_features: tuple[str, ...] = ()
    apply: ParamsUpdate | None = None
    solved: float | None = None
    max_episode_steps: int | None = None
    wrap: bool = True

    @functools.cached_property
    def _built(self) -> tuple[Any, Any]:
        return self.build()

    def make(self, context: Mapping[str, float]) -> tuple[Any, Any]:
        """The (wrapped) environment and its params under a full context."""
        env, params = self._built
        params = write_params(params, context, self.features)
        if self.apply is not None:
            params = self.apply(params, context)
        return (wrappers.standard(env, params) if self.wrap else env), params

    def make_host(self, context: Mapping[str, float]) -> Any:
        """Not a host environment: raises [`ConfigError`][metapbt.errors.ConfigError]."""
        raise ConfigError(f"{self.id} is a gymnax-API environment that steps in JAX: use make()")

    def horizon(self, params: Any) -> int:
        """Steps of one evaluation episode at most (its time limit).

        Raises:
            ConfigError: If neither the params nor the spec give one.
        """
        limit = getattr(params, "max_steps_in_episode", None) or self.max_episode_steps
        if limit is None:
            raise ConfigError(
                f"env {self.id!r} has no time limit: its params have no max_steps_in_episode; "
                "register it with max_episode_steps=N"
            )
        return int(limit)


@dataclass(frozen=True)
class GymnasiumSpec:
    """A gymnasium environment as a contextual family (steps on the host).

    Attributes:
        id: The id it was made under (``"gymnasium:Pendulum-v1"``).
        factory: Builds one environment, time limit included, from keyword arguments (the
            context's features).
        features: Its context features (`keyword_features`).
        gravity_features: Features a planet's gravity factor multiplies.
        max_episode_steps: The time limit (evaluation plays episodes to their end).
        solved: The usual "solved" return, if any.
    """

    trainer: ClassVar[str] = "host"
    family: ClassVar[str] = GENERIC
    mixes_contexts: ClassVar[bool] = False  # each host environment is built for its context

    id: str
    factory: Callable[..., Any]
    features: Mapping[str, Feature]
    gravity_features: tuple[str, ...] = ()
    max_episode_steps: int | None = None
    solved: float | None = None

    def make(self, context: Mapping[str, float]) -> tuple[Any, Any]:
        """Not a JAX environment: raises [`ConfigError`][metapbt.errors.ConfigError]."""
        raise ConfigError(f"{self.id} steps on the host (gymnasium): use make_host()")

    def make_host(self, context: Mapping[str, float]) -> Any:
        """One gymnasium environment under a full context."""
        kwargs = {
            name: int(value) if self.features[name].integer else float(value)
            for name, value in context.items()
        }
        return self.factory(**kwargs)


def keyword_features(
    target: Callable[..., Any] | None,
    registered: Mapping[str, Any] | None = None,
    bounds: Bounds | None = None,
    docs: Mapping[str, str] | None = None,
) -> Mapping[str, Feature]:
    """The numeric keyword arguments of ``target`` (a class or function) as context features.

    A parameter is a feature when its default (or the value ``registered`` gives it, as
    gymnasium's ``spec.kwargs``) is a number and not a bool. A target without a signature
    (``None``: a gymnasium spec without an entry point) has no features.
    """
    if target is None:  # inspect.signature(None) would raise TypeError, answered likewise
        return MappingProxyType({})
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return MappingProxyType({})
    features: dict[str, Feature] = {}
    for name, parameter in signature.parameters.items():
        value = (registered or {}).get(name, parameter.default)
        if value is inspect.Parameter.empty or not _is_number(value):
            continue
        if not math.isfinite(float(value)):
            continue
        features[name] = Feature(
            float(value), doc=(docs or {}).get(name, ""), integer=isinstance(value, int)
        )
    return _bounded(features, bounds or {})

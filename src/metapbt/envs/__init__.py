"""Contextual environments: a registry id plus a context gives an environment.

Known ids: ``cart_pole``, ``mountain_car``, ``pendulum``, ``acrobot`` (gymnax: `make` gives
``(env, params)`` that step inside JAX), the nine Brax robots (``hopper``, ``humanoid``, ...;
`metapbt.envs.brax_envs`, also behind `make`, with a ``gravity`` context) and
``lunar_lander`` (Box2D: `make_host` gives a gymnasium environment). Each spec's
``trainer`` attribute names the population trainer that fits it (``"jax"`` or ``"host"``;
`metapbt.engine.factory.make_trainer` reads it); its ``family`` (``"classic_control"``,
``"brax"`` or ``"box2d"``) says which PPO presets are meant for it (`metapbt.engine.presets`).

A context is given as a planet name (``"earth"``, ``"neptune"``...: the gravity factor over 9.81
scales the features the reference scaled), as ``"name=value,..."`` text, or as a mapping;
unspecified features keep their defaults.

The three spec kinds (`EnvSpec`,
`BraxEnvSpec`, `HostEnvSpec`)
implement one protocol, `EnvFamily`: each makes its own environments (``make`` for the
ones that step inside JAX, ``make_host`` for the host ones; the other one raises a clear error).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol

from metapbt.envs.adapters import Bounds, ParamsUpdate
from metapbt.envs.brax_envs import BRAX
from metapbt.envs.classic_control import CLASSIC_CONTROL
from metapbt.envs.contexts import PLANETS, Context, parse_assignments, planet_factor
from metapbt.envs.lunar_lander import LUNAR_LANDER
from metapbt.envs.registry import EnvRegistry
from metapbt.envs.sources import spec_of
from metapbt.errors import ConfigError


class EnvFamily(Protocol):
    """What every environment spec provides (the registry holds these)."""

    trainer: ClassVar[str]
    mixes_contexts: ClassVar[bool]
    family: ClassVar[str]

    # Read-only: the specs are frozen dataclasses.
    @property
    def id(self) -> str:
        """The registry id."""
        ...

    @property
    def features(self) -> Mapping[str, Any]:
        """The context features, by name."""
        ...

    @property
    def gravity_features(self) -> tuple[str, ...]:
        """The features a planet's gravity factor scales."""
        ...

    @property
    def solved(self) -> float | None:
        """The usual "solved" level of an episode's return; ``None``: none."""
        ...

    def make(self, context: Mapping[str, float]) -> tuple[Any, Any]:
        """A JAX-stepping environment and its params under a full context."""
        ...

    def make_host(self, context: Mapping[str, float]) -> Any:
        """A host-stepping environment under a full context."""
        ...


_OURS: tuple[EnvFamily, ...] = (*CLASSIC_CONTROL, *BRAX, LUNAR_LANDER)


def _returning(spec: EnvFamily) -> Callable[[], EnvFamily]:
    return lambda: spec


ENVS = EnvRegistry()
for _spec in _OURS:
    ENVS.register(_spec.id)(_returning(_spec))

BUILTIN = frozenset(s.id for s in _OURS)
"""Our own environment ids."""


def versioned_code(env_id: str) -> bool:
    """Whether ``env_id``'s code is ours or a versioned library's (gymnax, brax).

    A stored program (`metapbt.stored_programs`) is keyed by our source and those
    libraries' versions (navix's adapter included); a user's environment can change without
    either, so its programs are traced in every process instead of stored.
    """
    return env_id in BUILTIN or env_id.partition(":")[0] in ("gymnax", "brax", "navix")


def register(
    env_id: str,
    env: Any,
    *,
    params: Any = None,
    bounds: Bounds | None = None,
    docs: Mapping[str, str] | None = None,
    gravity_features: tuple[str, ...] | None = None,
    apply: ParamsUpdate | None = None,
    solved: float | None = None,
    max_episode_steps: int | None = None,
    replace: bool = False,
) -> EnvFamily:
    """Make ``env`` trainable as ``env_id`` (``metapbt run --env ID``, study files...).

    Args:
        env_id: The id (no spaces, no ``:``).
        env: A gymnax-API environment instance, a zero-argument factory returning one (or
            ``(env, params)``), a gymnasium environment class or factory, or a ready spec.
        params: A gymnax-API env's params (default: its ``default_params``); their numeric
            scalar fields are its context features.
        bounds: ``feature -> (low, high)``; features without bounds take any finite value.
        docs: ``feature -> description`` (``metapbt envs`` shows them).
        gravity_features: The features a planet name scales (default: ``gravity`` or ``g``).
        apply: ``(params, context) -> params``, run after the features are written: for
            derived fields (gymnax CartPole's ``total_mass`` from its two masses).
        solved: The usual "solved" return, if any.
        max_episode_steps: Time limit, for an env whose params carry none.
        replace: Replace an environment registered under ``env_id``.

    Returns:
        The checked spec (the environment is traced once, abstractly, to check its contract).

    A registration lives in this process; a spawned child (the watchdog's) sees it only if it
    is made at import time of a module the child imports: the ``metapbt.envs`` entry-point
    group, or a ``package.module:attr`` id, reaches every process.

    Raises:
        ConfigError: If the id is taken or malformed, or the environment breaks the contract.
    """
    spec = spec_of(
        env_id,
        env,
        params=params,
        bounds=bounds,
        docs=docs,
        gravity_features=gravity_features,
        apply=apply,
        solved=solved,
        max_episode_steps=max_episode_steps,
    )
    ENVS.add(env_id, lambda: spec, replace=replace)
    return spec


def spec(env_id: str) -> EnvFamily:
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
        if not env.gravity_features and planet_factor(context) != 1.0:
            raise ConfigError(
                f"{env_id} has no gravity feature for the planet {context!r}: give its "
                f"context as NAME=VALUE (features: {list(env.features)})"
            )
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


def member_contexts(
    env_id: str,
    context: str | Mapping[str, float] | Sequence[str | Mapping[str, float]] | None,
    size: int,
) -> list[Context]:
    """Every member's full context: one for all, or one per member.

    A `Context` (a run's, resolved once) is taken as it is; text or a partial mapping is
    resolved (`resolve_context`).

    Raises:
        ConfigError: For per-member contexts of the wrong length, or an invalid context.
    """

    def full(c: str | Mapping[str, float] | None) -> Context:
        return c if isinstance(c, Context) else resolve_context(env_id, c)

    if isinstance(context, Sequence) and not isinstance(context, str):
        if len(context) != size:
            raise ConfigError(f"{size} members need {size} contexts, got {len(context)}")
        return [full(c) for c in context]
    return [full(context)] * size


def make(env_id: str, context: str | Mapping[str, float] | None = None) -> tuple[Any, Any]:
    """Create the gymnax(-like) environment ``env_id`` and its params under ``context``.

    Raises:
        ConfigError: If ``env_id`` steps on the host (use `make_host`).
    """
    return spec(env_id).make(resolve_context(env_id, context))


def make_host(env_id: str, context: str | Mapping[str, float] | None = None) -> Any:
    """Create the host (gymnasium) environment ``env_id`` under ``context``.

    Raises:
        ConfigError: If ``env_id`` is a gymnax environment (use `make`).
    """
    return spec(env_id).make_host(resolve_context(env_id, context))


def names() -> list[str]:
    """Registered environment ids."""
    return ENVS.names()

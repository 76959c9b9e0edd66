"""Where environments come from: our registry, other libraries by prefix, a user's objects.

An env id is one of:

- a registered id: ours (``cart_pole``, ``hopper``, ``lunar_lander``...), one a user registered
  with `metapbt.envs.register`, or one an installed package declares in the
  ``metapbt.envs`` entry-point group (loaded on first use, so a spawned child process sees it
  as its parent does);
- ``gymnax:<id>``: any id of ``gymnax.registered_envs``;
- ``gymnasium:<id>``: any registered gymnasium environment, stepped on the host;
- ``brax:<name>``: any environment of ``brax.envs`` (with a gravity context);
- ``navix:<id>``: any navix grid world (`metapbt.envs.navix_source`);
- ``package.module:attr``: a user's object: a gymnax-API environment instance, a zero-argument
  factory returning one (or ``(env, params)``), a gymnasium environment class or factory, or a
  ready spec.

`spec_of` turns an object into a spec (`GymnaxApiSpec` or
`GymnasiumSpec`) and checks that it keeps the contract
(`metapbt.envs.checks`), so a broken environment fails before training with an error that
names it. Sources are built once per process and id (cached).

A ``module:attr`` id (and a ``gymnasium:module:Env`` id) imports a Python module: that runs
code. Ids typed by the user (``--env``, Python) are the user's own; ids read from a file someone
may have sent (a study file, a portfolio's ``setup.json``) are resolved inside
`refusing_imports`, where such an id is a [`ConfigError`][metapbt.errors.ConfigError] unless its
module (or a package above it) is listed in the ``METAPBT_ALLOW_IMPORT`` environment variable
(comma-separated module names, or ``*`` for any).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from importlib import metadata
from typing import Any

from metapbt.envs import adapters, checks
from metapbt.envs.adapters import Bounds, GymnasiumSpec, GymnaxApiSpec, ParamsUpdate
from metapbt.errors import ConfigError, UnknownNameError

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "metapbt.envs"
"""The entry-point group an installed package lists its environments in (name -> object)."""

PREFIXES = ("gymnax", "gymnasium", "brax", "navix")
"""The library prefixes of an env id (``gymnax:<id>``...)."""

_MODULE_ATTR = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

SOURCES_HELP = (
    "gymnax:<id>, gymnasium:<id>, brax:<name>, navix:<id>, package.module:attr, or an id "
    "registered with "
    "metapbt.envs.register() or the 'metapbt.envs' entry-point group"
)


ALLOW_IMPORT_VAR = "METAPBT_ALLOW_IMPORT"
"""Modules a file may make the program import (comma-separated; ``*``: any)."""

_REFUSING: ContextVar[str | None] = ContextVar("metapbt_refusing_imports", default=None)


def imported_module(env_id: str) -> str | None:
    """The Python module resolving ``env_id`` would import, or ``None`` (ours, a library's).

    Examples:
        ```pycon
        >>> imported_module("ramp:ENV"), imported_module("gymnax:CartPole-v1")
        ('ramp', None)

        ```
    """
    prefix, sep, rest = env_id.partition(":")
    if prefix == "gymnasium" and ":" in rest:  # gymnasium's own "module:EnvName" form
        return rest.partition(":")[0]
    if sep and prefix not in PREFIXES and _MODULE_ATTR.match(env_id):
        return prefix
    return None


@contextlib.contextmanager
def refusing_imports(source: str) -> Iterator[None]:
    """Inside: an env id that would import a module not allowed is a ``ConfigError``.

    Args:
        source: What the ids come from (``"study file s.toml"``), named in the error.
    """
    token = _REFUSING.set(source)
    try:
        yield
    finally:
        _REFUSING.reset(token)


def check_import(env_id: str) -> None:
    """Raise if ``env_id`` would import a module inside `refusing_imports` (not allowed)."""
    source, module = _REFUSING.get(), imported_module(env_id)
    if source is None or module is None:
        return
    allowed = {m.strip() for m in os.environ.get(ALLOW_IMPORT_VAR, "").split(",") if m.strip()}
    if "*" in allowed or any(module == m or module.startswith(m + ".") for m in allowed):
        return  # a listed package allows its modules
    raise ConfigError(
        f"{source} names env {env_id!r}, which would import the Python module {module!r} "
        f"(running its code); a file cannot make metapbt run code. If you trust it, set "
        f"{ALLOW_IMPORT_VAR}={module} and run again"
    )


def is_source(env_id: str) -> bool:
    """Whether ``env_id`` names a source by prefix or ``module:attr`` (not a registered id)."""
    prefix, sep, _ = env_id.partition(":")
    return bool(sep) and (prefix in PREFIXES or bool(_MODULE_ATTR.match(env_id)))


def from_source(env_id: str) -> Any:
    """The spec of a prefixed or ``module:attr`` env id.

    Raises:
        ConfigError: If the library is missing, the id unknown to it, the module or attribute
            missing, or the environment breaks the contract.
    """
    prefix, _, name = env_id.partition(":")
    if prefix == "gymnax":
        return _gymnax(env_id, name)
    if prefix == "gymnasium":
        return _gymnasium(env_id, name)
    if prefix == "brax":
        return _brax(env_id, name)
    if prefix == "navix":
        from metapbt.envs.navix_source import navix_build

        return spec_of(env_id, navix_build(env_id, name))
    return spec_of(env_id, load_attr(env_id))


def load_attr(text: str) -> Any:
    """The object ``package.module:attr`` names (``attr`` may be dotted).

    The working directory is put first on ``sys.path`` (as ``python -m`` does),
    so ``--env my_env:ENV`` finds ``my_env.py`` where the command runs.

    Raises:
        ConfigError: If the module cannot be imported or has no such attribute.
    """
    module_name, _, attr = text.partition(":")
    # A user's module in the working directory imports as it would with `python -m` (first
    # on the path): the `metapbt` script's own sys.path does not hold the working directory.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(
            f"env {text!r}: cannot import module {module_name!r} ({err}); is it installed "
            "or on PYTHONPATH?"
        ) from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"env {text!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _gymnax(env_id: str, name: str) -> GymnaxApiSpec:
    import gymnax

    if name not in gymnax.registered_envs:
        raise UnknownNameError(
            f"unknown gymnax env {name!r} in {env_id!r}; gymnax has: "
            f"{', '.join(gymnax.registered_envs)}"
        )

    def build() -> tuple[Any, Any]:
        try:
            return gymnax.make(name)
        except OSError as err:  # MNISTBandit downloads its data set when made
            raise ConfigError(f"{env_id}: gymnax cannot make {name!r} here: {err}") from None

    return spec_of(env_id, build)


def _gymnasium(env_id: str, name: str) -> GymnasiumSpec:
    try:
        import gymnasium
        from gymnasium.envs.registration import load_env_creator
    except ImportError:
        raise ConfigError(f"{env_id} needs gymnasium: pip install gymnasium") from None
    try:
        registered = gymnasium.spec(name)
    except gymnasium.error.Error as err:
        raise UnknownNameError(f"unknown gymnasium env {name!r} in {env_id!r}: {err}") from None
    creator = (
        load_env_creator(registered.entry_point)
        if isinstance(registered.entry_point, str)
        else registered.entry_point
    )
    features = adapters.keyword_features(creator, registered.kwargs)

    def factory(**kwargs: Any) -> Any:
        return gymnasium.make(name, **kwargs)

    spec = GymnasiumSpec(
        env_id,
        factory,
        features,
        adapters.gravity_features(features, None),
        registered.max_episode_steps,
        registered.reward_threshold,
    )
    checks.check_host(spec)
    return spec


def _brax(env_id: str, name: str) -> Any:
    from metapbt.envs.brax_envs import BraxEnvSpec, brax_envs

    known = sorted(brax_envs()._envs)
    if name not in known:
        raise UnknownNameError(f"unknown brax env {name!r} in {env_id!r}; brax has: {known}")
    return BraxEnvSpec(env_id, name)


def spec_of(
    env_id: str,
    obj: Any,
    *,
    params: Any = None,
    bounds: Bounds | None = None,
    docs: Mapping[str, str] | None = None,
    gravity_features: tuple[str, ...] | None = None,
    apply: ParamsUpdate | None = None,
    solved: float | None = None,
    max_episode_steps: int | None = None,
) -> Any:
    """A checked spec for ``obj``: an env instance, a factory, a gymnasium class, or a spec.

    Args:
        env_id: The id it is known under.
        obj: A spec (returned as it is), a gymnax-API environment, a gymnasium environment
            class or zero-argument factory of one, or a zero-argument factory returning a
            gymnax-API environment or ``(env, params)``.
        params: The gymnax-API environment's params (default: its ``default_params``).
        bounds: Bounds of context features, ``name -> (low, high)`` (default: the env's
            ``context_bounds`` attribute, if any).
        docs: A description per feature.
        gravity_features: The features a planet's factor scales (default: one named
            ``gravity`` or ``g``).
        apply: ``(params, context) -> params`` after the features are written (derived fields).
        solved: The usual "solved" return.
        max_episode_steps: Time limit, when the env does not carry one.

    Raises:
        ConfigError: If ``obj`` is none of those, or breaks the contract (naming ``env_id``).
    """
    if _is_spec(obj):
        return obj
    if _is_gymnasium_class(obj):
        return _gymnasium_spec(
            env_id, obj, bounds, docs, gravity_features, solved, max_episode_steps
        )
    if _is_gymnax_env(obj):
        env = obj
        build: Callable[[], tuple[Any, Any]] = lambda: (env, _params(env_id, env, params))  # noqa: E731
    elif callable(obj) and not isinstance(obj, type):
        made = _call_factory(env_id, obj)
        if _is_gymnasium_env(made):
            return _gymnasium_spec(
                env_id, obj, bounds, docs, gravity_features, solved, max_episode_steps, sample=made
            )
        build = _gymnax_build(env_id, obj, made, params)
    else:
        raise ConfigError(
            f"env {env_id!r} is a {type(obj).__name__}: expected a gymnax-API environment "
            "(reset, step, default_params, observation_space, action_space), a zero-argument "
            "factory of one, or a gymnasium environment class or factory"
        )
    env, default = build()
    try:
        features = adapters.params_features(
            default, bounds if bounds is not None else getattr(env, "context_bounds", None), docs
        )
    except ConfigError as err:
        raise ConfigError(f"env {env_id!r}: {err}") from None
    spec = GymnaxApiSpec(
        env_id,
        build,
        features,
        adapters.gravity_features(features, gravity_features),
        apply,
        solved,
        max_episode_steps,
    )
    checks.check_jax(spec)
    return spec


def _is_spec(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("trainer", "features", "make", "make_host", "family"))


def _is_gymnax_env(obj: Any) -> bool:
    if isinstance(obj, type):
        return False
    attrs = ("reset", "step", "observation_space", "action_space")
    return all(callable(getattr(obj, a, None)) for a in attrs) and not _is_gymnasium_env(obj)


def _is_gymnasium_env(obj: Any) -> bool:
    try:
        import gymnasium
    except ImportError:
        return False
    return isinstance(obj, gymnasium.Env)


def _is_gymnasium_class(obj: Any) -> bool:
    try:
        import gymnasium
    except ImportError:
        return False
    return isinstance(obj, type) and issubclass(obj, gymnasium.Env)


def _params(env_id: str, env: Any, params: Any) -> Any:
    if params is not None:
        return params
    if not hasattr(env, "default_params"):
        raise ConfigError(
            f"env {env_id!r} has no default_params: give its params (register(..., params=P)) "
            "or return (env, params) from a factory"
        )
    return env.default_params


def _call_factory(env_id: str, factory: Callable[[], Any]) -> Any:
    try:
        return factory()
    except TypeError as err:
        raise ConfigError(f"env {env_id!r}: its factory must take no arguments ({err})") from None


def _gymnax_build(
    env_id: str, factory: Callable[[], Any], made: Any, params: Any
) -> Callable[[], tuple[Any, Any]]:
    if isinstance(made, tuple) and len(made) == 2 and _is_gymnax_env(made[0]):
        return lambda: tuple(factory())
    if _is_gymnax_env(made):
        return lambda: (lambda env: (env, _params(env_id, env, params)))(factory())
    raise ConfigError(
        f"env {env_id!r}: its factory returned a {type(made).__name__}, not a gymnax-API "
        "environment, (env, params) or a gymnasium environment"
    )


def _gymnasium_spec(
    env_id: str,
    creator: Callable[..., Any],
    bounds: Bounds | None,
    docs: Mapping[str, str] | None,
    gravity_features: tuple[str, ...] | None,
    solved: float | None,
    max_episode_steps: int | None,
    sample: Any = None,
) -> GymnasiumSpec:
    from gymnasium.wrappers import TimeLimit

    features = adapters.keyword_features(creator, None, bounds, docs)
    if max_episode_steps is None and sample is not None:
        max_episode_steps = getattr(getattr(sample, "spec", None), "max_episode_steps", None)

    def factory(**kwargs: Any) -> Any:
        env = creator(**kwargs)
        limited = getattr(getattr(env, "spec", None), "max_episode_steps", None)
        if max_episode_steps is not None and limited is None:
            env = TimeLimit(env, max_episode_steps)
        return env

    spec = GymnasiumSpec(
        env_id,
        factory,
        features,
        adapters.gravity_features(features, gravity_features),
        max_episode_steps,
        solved,
    )
    checks.check_host(spec)
    return spec


def entry_points() -> dict[str, metadata.EntryPoint]:
    """The ``metapbt.envs`` entry points of the installed packages, by env id."""
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def from_entry_point(entry: metadata.EntryPoint) -> Any:
    """The spec an entry point's object gives (its name is the env id).

    Raises:
        ConfigError: If its object cannot be loaded or breaks the contract.
    """
    try:
        obj = entry.load()
    except Exception as err:  # an installed package's import error: name it, keep its cause
        raise ConfigError(
            f"env {entry.name!r} of the entry point {entry.value!r} cannot be loaded: {err}"
        ) from err
    return spec_of(entry.name, obj)

"""The environment registry: registered ids, entry points and sources behind one lookup."""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib import metadata
from typing import Any

from metapbt.envs import sources
from metapbt.errors import ConfigError, UnknownNameError


@functools.cache
def _entry_points() -> dict[str, metadata.EntryPoint]:
    return sources.entry_points()


class EnvRegistry:
    """Env ids to specs: registered ids, then entry points, then sources by prefix.

    A spec is built once per process and id. `make` is the one lookup every layer uses
    (``envs.spec``), so an id that works for ``metapbt run`` works in a study file, a meta-data
    build, a portfolio step, ``calibrate`` and a spawned child process.
    """

    def __init__(self) -> None:
        self._factories: dict[str, Callable[[], Any]] = {}
        self._built: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
        """Decorator that registers a zero-argument factory of a spec under ``name``.

        Raises:
            ConfigError: If ``name`` is already registered or names a source.
        """

        def decorator(factory: Callable[[], Any]) -> Callable[[], Any]:
            self.add(name, factory)
            return factory

        return decorator

    def add(self, name: str, factory: Callable[[], Any], replace: bool = False) -> None:
        """Register ``factory`` (zero arguments, returns a spec) under ``name``.

        Raises:
            ConfigError: If ``name`` is taken (and not ``replace``), empty, contains a space
                (task ids are ``"<env> <context>"``) or looks like a source.
        """
        if not name or " " in name or sources.is_source(name):
            raise ConfigError(
                f"env id {name!r} must be non-empty, without spaces and not a source "
                f"({sources.SOURCES_HELP})"
            )
        if name in self._factories and not replace:
            raise ConfigError(f"environment {name!r} is already registered (replace=True)")
        self._factories[name] = factory
        self._built.pop(name, None)

    def make(self, name: str) -> Any:
        """The spec of ``name`` (built on first use).

        Raises:
            UnknownNameError: If ``name`` is neither registered, an entry point nor a source.
            ConfigError: If its source or entry point cannot be loaded, or breaks the contract.
        """
        sources.check_import(name)  # also for a cached spec: the same answer every time
        if name in self._built:
            return self._built[name]
        if name in self._factories:
            spec = self._factories[name]()
        elif sources.is_source(name):
            spec = sources.from_source(name)
        elif name in _entry_points():
            spec = sources.from_entry_point(_entry_points()[name])
        else:
            raise UnknownNameError(
                f"unknown env {name!r}; registered: {', '.join(self.names())}; or a source: "
                f"{sources.SOURCES_HELP}"
            )
        self._built[name] = spec
        return spec

    def check(self, name: str, label: str | None = None) -> str:
        """Return ``name`` if it gives a spec (for validators); raise as `make` does."""
        self.make(name)
        return name

    def names(self) -> list[str]:
        """The registered ids and the installed packages' entry points, sorted."""
        return sorted(set(self._factories) | set(_entry_points()))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.make(name)
        except ConfigError:
            return False
        return True

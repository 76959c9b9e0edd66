"""A tiny generic registry: ``register(name)(factory)`` and ``make(name, **kwargs)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from metapbt.errors import ConfigError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named factories of one family (explorers, methods, environments, presets).

    Args:
        family: Human-readable family name used in error messages, e.g. ``"method"``.
    """

    def __init__(self, family: str) -> None:
        self._family = family
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator that registers ``factory`` under ``name``.

        Raises:
            ConfigError: If ``name`` is already registered.
        """

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ConfigError(f"{self._family} {name!r} is already registered")
            self._factories[name] = factory
            return factory

        return decorator

    def make(self, name: str, **kwargs: object) -> T:
        """Build the registered object ``name``.

        Raises:
            UnknownNameError: If ``name`` is unknown; the message lists the known names.
        """
        try:
            factory = self._factories[name]
        except KeyError:
            known = ", ".join(sorted(self._factories))
            raise UnknownNameError(
                f"unknown {self._family} {name!r}; known {self._family}s: {known}"
            ) from None
        return factory(**kwargs)

    def check(self, name: str, label: str | None = None) -> str:
        """Return ``name`` if it is registered (for validators).

        Raises:
            UnknownNameError: If it is not; the message names ``label`` (the family by
                default) and lists the known names.
        """
        if name not in self._factories:
            known = ", ".join(sorted(self._factories))
            raise UnknownNameError(f"unknown {label or self._family} {name!r}; known: {known}")
        return name

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

"""Contexts: frozen mappings of physical parameters that select a task of an environment family.

A context is data. It is resolved against an environment's declared features (defaults and
bounds), and written into the environment's parameter pytree, so a population can train on
any context inside one compiled program.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from metapbt.errors import ConfigError

EARTH_GRAVITY = 9.81
PLANETS: Mapping[str, float] = MappingProxyType(
    {"uranus": 8.7, "venus": 8.9, "saturn": 9.0, "earth": 9.81, "neptune": 11.0}
)
"""Surface gravities (m/s^2) of the reference protocol's five contexts."""


def planet_factor(planet: str) -> float:
    """Gravity of ``planet`` relative to Earth's 9.81 (the reference's ``g_factor``)."""
    try:
        return PLANETS[planet] / EARTH_GRAVITY
    except KeyError:
        raise ConfigError(
            f"unknown planet {planet!r}; known planets: {', '.join(PLANETS)}"
        ) from None


@dataclass(frozen=True)
class Feature:
    """One context feature of an environment: a physical parameter with its default and bounds.

    Bounds are optional: a feature read from an environment's own parameters (a gymnax-API
    env's ``default_params``) has none unless its author or the user gives them, and then takes
    any finite value.

    Args:
        default: Value of the environment's standard task.
        low: Smallest allowed value (``None``: no lower bound).
        high: Largest allowed value (``None``: no upper bound).
        doc: What the feature is.
        integer: The parameter is an integer (a value must be whole; it is written back as an
            ``int``).
    """

    default: float
    low: float | None = None
    high: float | None = None
    doc: str = ""
    integer: bool = False

    @property
    def bounded(self) -> bool:
        """Whether both bounds are known."""
        return self.low is not None and self.high is not None

    def check(self, name: str, value: float) -> float:
        """Return ``value`` as a float, or raise if it is not finite or out of bounds."""
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"context feature {name}={value!r} is not a finite number")
        if self.integer and value != int(value):
            raise ConfigError(f"context feature {name}={value!r} must be a whole number")
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            raise ConfigError(
                f"context feature {name}={value!r} is outside [{self.low}, {self.high}]"
            )
        return value

    def bounds(self, name: str, needed_for: str) -> tuple[float, float]:
        """``(low, high)``, or an error saying what needs them and how to give them.

        Raises:
            ConfigError: If a bound is unknown.
        """
        if self.low is None or self.high is None:
            raise ConfigError(
                f"context feature {name!r} has no bounds, and {needed_for} needs them: give "
                f"them where the environment is registered (bounds={{{name!r}: (low, high)}}) "
                "or as the env's context_bounds attribute"
            )
        return self.low, self.high


class Context(Mapping[str, float]):
    """An immutable, hashable mapping from feature name to value (every feature present)."""

    def __init__(self, values: Mapping[str, float]) -> None:
        self._values = dict(sorted((k, float(v)) for k, v in values.items()))

    def __getitem__(self, key: str) -> float:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __hash__(self) -> int:
        return hash(tuple(self._values.items()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self) == dict(other)

    def __repr__(self) -> str:
        return f"Context({self._values})"


def parse_assignments(text: str) -> dict[str, float]:
    """Parse ``"gravity=12.0,length=0.7"`` into ``{"gravity": 12.0, "length": 0.7}``."""
    out: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"expected NAME=VALUE in context {text!r}, got {item!r}")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(
                f"context value of {name.strip()!r} is not a number: {value!r}"
            ) from None
    return out


def task_id(env: str, context: str) -> str:
    """The id of a task: ``"<env> <context>"``, e.g. ``"cart_pole earth"``.

    ``name=value`` contexts are canonicalised (`parse_assignments`, sorted, values as
    floats) so one spelling always gets one id. Ids name tasks in files and tables; whether two
    tasks are the same physical task is decided by their resolved values
    ([`metapbt.metadata.source.TaskRef`][metapbt.metadata.source.TaskRef]), not by their ids.
    """
    if "=" in context:
        items = sorted(parse_assignments(context).items())
        context = ",".join(f"{name}={value!r}" for name, value in items)
    return f"{env} {context}"


def split_task_id(task: str) -> tuple[str, str]:
    """``"<env> <context>"`` back into ``(env, context)``."""
    env, _, context = task.partition(" ")
    return env, context


def task_features(task: str) -> tuple[str, dict[str, float]]:
    """A task id's environment and its context's features (``{}`` for a named context).

    Examples:
        ```pycon
        >>> task_features("lunar_lander leg_height=1.6")
        ('lunar_lander', {'leg_height': 1.6})
        >>> task_features("cart_pole earth")
        ('cart_pole', {})

        ```
    """
    env, context = split_task_id(task)
    return env, parse_assignments(context) if "=" in context else {}

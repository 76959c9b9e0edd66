"""Contextual LunarLander (gymnasium Box2D, discrete actions); it steps on the host, not in JAX.

Box2D cannot run inside a jitted program, so this family is a `HostEnvSpec`: a factory of
gymnasium environments for a context, trained by
`HostPopulationTrainer`.

How a context reaches the physics. ``gravity`` is gymnasium's constructor argument (gymnasium
asserts ``-12 < gravity < 0``). The other features are module constants of
``gymnasium.envs.box2d.lunar_lander`` that gymnasium reads when it builds the lander
(``LEG_H``, ``LEG_W`` in ``reset``) or fires an engine (``MAIN_ENGINE_POWER``,
``SIDE_ENGINE_POWER`` in ``step``). `ContextualLunarLander`'s ``reset`` and ``step`` set
those constants to the context's values for the duration of the call and restore gymnasium's
values afterwards, under one re-entrant lock, so environments of different contexts can live in
one process (stepped from any thread) and plain ``LunarLander-v3`` is left untouched. A
subclass that rebuilt the legs itself would have to copy gymnasium's ``reset``; borrowing the
constants keeps gymnasium's code the only definition of the lander.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import Any, ClassVar

from metapbt.envs.contexts import Feature
from metapbt.errors import ConfigError

MAX_EPISODE_STEPS = 1000
"""LunarLander-v3's registered time limit (episodes beyond it are truncated)."""

MODULE_CONSTANTS: Mapping[str, str] = MappingProxyType(
    {
        "leg_height": "LEG_H",
        "leg_width": "LEG_W",
        "main_engine_power": "MAIN_ENGINE_POWER",
        "side_engine_power": "SIDE_ENGINE_POWER",
    }
)
"""Context feature -> the gymnasium module constant it replaces."""

_CONSTANTS_LOCK = threading.RLock()


@dataclass(frozen=True)
class HostEnvSpec:
    """A contextual environment family whose environments step on the host (not in JAX).

    Attributes:
        id: Registry id, e.g. ``"lunar_lander"``.
        gymnasium_id: The gymnasium environment it extends (and is tested against).
        features: Context features with defaults and bounds.
        gravity_features: Features a planet's gravity factor multiplies.
        max_episode_steps: Time limit of an episode (a truncation, as in gymnasium).
        factory: Builds one environment, time limit included, for a full context.
        solved: The usual "solved" level of an episode's return (Gym's ``reward_threshold``).
        trainer: Which population trainer fits (class attribute): ``"host"``, the environments
            step in Python between jitted policy and update calls.
        family: ``"box2d"`` (class attribute; the presets meant for it say so).
    """

    trainer: ClassVar[str] = "host"
    family: ClassVar[str] = "box2d"
    mixes_contexts: ClassVar[bool] = False  # the leg geometry is built into each host environment

    id: str
    gymnasium_id: str
    features: Mapping[str, Feature]
    gravity_features: tuple[str, ...]
    max_episode_steps: int
    factory: Callable[[Mapping[str, float]], Any]
    solved: float | None = None

    def make(self, context: Mapping[str, float]) -> tuple[Any, Any]:
        """Not a JAX environment: raises [`ConfigError`][metapbt.errors.ConfigError]."""
        raise ConfigError(
            f"{self.id} steps on the host (Box2D), not inside JAX: create it with "
            "envs.make_host(), train it with engine.factory.make_trainer()"
        )

    def make_host(self, context: Mapping[str, float]) -> Any:
        """One gymnasium environment (time limit included) under a full context."""
        return self.factory(context)


@contextmanager
def _constants(module: ModuleType, values: Mapping[str, float]) -> Iterator[None]:
    """Set ``module``'s constants to ``values`` for the block, then restore them."""
    with _CONSTANTS_LOCK:
        saved = {name: getattr(module, name) for name in values}
        try:
            for name, value in values.items():
                setattr(module, name, value)
            yield
        finally:
            for name, value in saved.items():
                setattr(module, name, value)


@functools.cache
def lander_class() -> type:
    """The `ContextualLunarLander` class (built on first use: imports gymnasium, Box2D).

    Raises:
        ConfigError: If the ``box2d`` extra is not installed.
    """
    try:
        from gymnasium.envs.box2d import lunar_lander as module
        from gymnasium.utils import EzPickle
    except ImportError as err:  # gymnasium's DependencyNotInstalled is an ImportError
        raise ConfigError(f"lunar_lander needs Box2D ({err}): pip install -e '.[box2d]'") from None

    class ContextualLunarLander(module.LunarLander):
        """gymnasium's discrete LunarLander whose ``reset`` and ``step`` use a context.

        Args:
            context: A full context of `LUNAR_LANDER` (every feature present).
            render_mode: gymnasium's render mode.
        """

        def __init__(self, context: Mapping[str, float], render_mode: str | None = None) -> None:
            super().__init__(render_mode=render_mode, continuous=False, gravity=context["gravity"])
            # Pickle (and copy) by this class's own arguments, not LunarLander's.
            EzPickle.__init__(self, context, render_mode)
            self.context = dict(context)
            self._constants = {const: context[f] for f, const in MODULE_CONSTANTS.items()}

        def reset(
            self, *, seed: int | None = None, options: dict[str, Any] | None = None
        ) -> tuple[Any, dict[str, Any]]:
            """Reset as gymnasium does, building the lander with the context's leg geometry."""
            with _constants(module, self._constants):
                return super().reset(seed=seed, options=options)

        def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
            """Step as gymnasium does, firing the engines with the context's powers."""
            with _constants(module, self._constants):
                return super().step(action)

    ContextualLunarLander.__module__ = __name__
    ContextualLunarLander.__qualname__ = "ContextualLunarLander"
    return ContextualLunarLander


def __getattr__(name: str) -> Any:
    # ``ContextualLunarLander`` is built on first use so importing this module stays cheap.
    if name == "ContextualLunarLander":
        return lander_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_lunar_lander(context: Mapping[str, float], render_mode: str | None = None) -> Any:
    """One contextual LunarLander under gymnasium's ``TimeLimit`` of 1000 steps.

    Args:
        context: A full, validated context (see `metapbt.envs.resolve_context`).
        render_mode: gymnasium's render mode (``None``: no rendering).

    Returns:
        A ``gymnasium.Env`` whose ``unwrapped`` is a ``ContextualLunarLander``.
    """
    from gymnasium.wrappers import TimeLimit

    return TimeLimit(lander_class()(context, render_mode), MAX_EPISODE_STEPS)


LUNAR_LANDER = HostEnvSpec(
    "lunar_lander",
    "LunarLander-v3",
    MappingProxyType(
        {
            # Leg boxes are given as half-extents in gymnasium's pixel units (30 px = 1 m).
            # The reference varied leg_height over 0.8..17.6 (0.1x..2.2x the default).
            "leg_height": Feature(8.0, 0.5, 20.0, "half-height of each leg (LEG_H, px)"),
            "leg_width": Feature(2.0, 0.5, 10.0, "half-width of each leg (LEG_W, px)"),
            # gymnasium asserts -12 < gravity < 0; every planet (-8.87..-11.21) fits.
            "gravity": Feature(-10.0, -11.99, -0.01, "vertical gravity (m/s^2)"),
            "main_engine_power": Feature(13.0, 1.0, 50.0, "main engine impulse scale"),
            "side_engine_power": Feature(0.6, 0.05, 5.0, "side engine impulse scale"),
        }
    ),
    ("gravity",),
    MAX_EPISODE_STEPS,
    make_lunar_lander,
    solved=200.0,
)
"""LunarLander with leg geometry, gravity and engine powers as context features."""

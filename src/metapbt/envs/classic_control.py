"""Contextual classic-control environments over gymnax, with their features and planet rules."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, ClassVar

from metapbt.envs.contexts import Feature
from metapbt.errors import ConfigError

ParamsUpdate = Callable[[Any, Mapping[str, float]], Any]


@dataclass(frozen=True)
class EnvSpec:
    """A contextual environment family.

    Attributes:
        id: Registry id, e.g. ``"cart_pole"``.
        gymnax_id: The gymnax environment it wraps.
        gymnasium_id: The gymnasium reference it is tested against.
        features: Context features with defaults and bounds.
        gravity_features: Features a planet's gravity factor multiplies (for Acrobot, which has
            no gravity parameter, the link masses, as the reference did).
        apply: Writes a full context into the gymnax params, recomputing derived fields.
        solved: The usual "solved" level of an episode's return (Gym's ``reward_threshold``;
            Pendulum has none there: -200 is the level commonly quoted); ``None``: none.
        trainer: Which population trainer fits (class attribute): ``"jax"``, the environments
            step inside the trainer's one jitted program.
        family: ``"classic_control"`` (class attribute; the presets meant for it say so).
    """

    trainer: ClassVar[str] = "jax"
    family: ClassVar[str] = "classic_control"
    mixes_contexts: ClassVar[bool] = True  # a context is gymnax params: traced per member

    id: str
    gymnax_id: str
    gymnasium_id: str
    features: Mapping[str, Feature]
    gravity_features: tuple[str, ...]
    apply: ParamsUpdate
    solved: float | None = None

    def make(self, context: Mapping[str, float]) -> tuple[Any, Any]:
        """The gymnax environment and its params under a full context."""
        from metapbt._deferred import GYMNAX_RENDERING, defer

        defer(GYMNAX_RENDERING)
        import gymnax

        env, params = gymnax.make(self.gymnax_id)
        return env, self.apply(params, context)

    def make_host(self, context: Mapping[str, float]) -> Any:
        """Not a host environment: raises [`ConfigError`][metapbt.errors.ConfigError]."""
        raise ConfigError(f"{self.id} is a gymnax environment that steps in JAX: use envs.make()")


def _cart_pole(params: Any, ctx: Mapping[str, float]) -> Any:
    # gymnax stores total_mass and polemass_length separately: keep them in sync.
    return replace(
        params,
        gravity=ctx["gravity"],
        masscart=ctx["masscart"],
        masspole=ctx["masspole"],
        length=ctx["length"],
        force_mag=ctx["force_mag"],
        total_mass=ctx["masscart"] + ctx["masspole"],
        polemass_length=ctx["masspole"] * ctx["length"],
    )


def _copy_fields(params: Any, ctx: Mapping[str, float]) -> Any:
    return replace(params, **dict(ctx))


def _features(**features: Feature) -> Mapping[str, Feature]:
    return MappingProxyType(features)


CLASSIC_CONTROL: tuple[EnvSpec, ...] = (
    EnvSpec(
        "cart_pole",
        "CartPole-v1",
        "CartPole-v1",
        _features(
            gravity=Feature(9.8, 0.1, 100.0, "gravitational acceleration"),
            masscart=Feature(1.0, 0.01, 10.0, "cart mass"),
            masspole=Feature(0.1, 0.001, 10.0, "pole mass"),
            length=Feature(0.5, 0.01, 10.0, "half the pole's length"),
            force_mag=Feature(10.0, 0.1, 100.0, "push force"),
        ),
        ("gravity",),
        _cart_pole,
        solved=475.0,
    ),
    EnvSpec(
        "mountain_car",
        "MountainCar-v0",
        "MountainCar-v0",
        _features(
            gravity=Feature(0.0025, 1e-5, 0.1, "gravity term of the velocity update"),
            force=Feature(0.001, 1e-5, 0.1, "engine force"),
        ),
        ("gravity",),
        _copy_fields,
        solved=-110.0,
    ),
    EnvSpec(
        "pendulum",
        "Pendulum-v1",
        "Pendulum-v1",
        _features(
            g=Feature(10.0, 0.1, 100.0, "gravity used by the dynamics"),
            m=Feature(1.0, 0.01, 10.0, "mass"),
            l=Feature(1.0, 0.01, 10.0, "length"),
        ),
        # The reference scaled a mislabelled CARL key, so its five Pendulum tasks were one.
        ("g",),
        _copy_fields,
        solved=-200.0,
    ),
    EnvSpec(
        "acrobot",
        "Acrobot-v1",
        "Acrobot-v1",
        _features(
            link_mass_1=Feature(1.0, 0.01, 10.0, "mass of link 1"),
            link_mass_2=Feature(1.0, 0.01, 10.0, "mass of link 2"),
            link_length_1=Feature(1.0, 0.01, 10.0, "length of link 1"),
        ),
        ("link_mass_1", "link_mass_2"),
        _copy_fields,
        solved=-100.0,
    ),
)

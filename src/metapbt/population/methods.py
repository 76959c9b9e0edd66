"""Named methods: an exploit rule composed with an explore strategy.

Every PB2-family method is one `PB2Explorer` with a
surrogate and an acquisition rule; each registry entry below is that composition and says
whether it uses meta-data. Adding a method is a new surrogate or acquisition (if it needs one)
plus one entry here.

| name | meta-data | surrogate | acquisition |
| --- | --- | --- | --- |
| `random` | no | (no exploit, no explore: random search) | |
| `pbt` | no | (resample p = 0.25 or multiply by 0.8 / 1.2) | |
| `pb2` | no | GP, free kernel, lengthscale clipped; linear scale; copy | UCB adding the variance |
| `pb2-star` | no | GP, bounded kernel; log space | UCB adding the std |
| `meta-prior` | yes | GP on the residual of the RGPE-weighted meta prior | UCB (std) |
| `multitask` | yes | multi-task GP, target + top 4 | UCB (std), kappa over all rows |
| `taf` | yes | GP | TAF (EI + weighted meta gains) |
| `dkl` | no | deep-kernel GP | UCB (std) |
| `meta-dkl` | yes | deep-kernel GP pre-trained on the meta-data | UCB (std) |
| `schedule-replay` | yes | (no exploit; each member replays a schedule from the meta-data) | |
| `schedule-pbt` | yes | (truncation; a clone takes its donor's weights and schedule) | |

Every PB2-family method ``m`` has a variant ``m-tr`` (``pb2-star-tr``, ``meta-prior-tr``, ...):
the same surrogate and acquisition, maximised inside an adaptive box around the donor
(`trust_region`). Every PB2-family method and ``pbt`` has a variant ``m-patient``
(``pb2-star-patient``, ``pbt-patient``, ...): a clone keeps its donor's configuration while the
donor's reward still rises (`patience`), and explores as ``m`` once it has stalled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from metapbt._registry import Registry
from metapbt.errors import ConfigError
from metapbt.metadata.source import MetaSource
from metapbt.population.exploit import ExploitRule, NoExploit, TruncationSelection
from metapbt.population.explorers import (
    Explorer,
    NoPerturbation,
    PB2Explorer,
    PBTPerturbation,
    pb2_star,
    stock_pb2,
)
from metapbt.population.explorers.acquisition_rules import TAFRule, UCBRule
from metapbt.population.explorers.bandit import CategoricalBandit
from metapbt.population.explorers.dkl import DeepKernelSurrogate
from metapbt.population.explorers.meta_models import MetaModels
from metapbt.population.explorers.models import (
    STOCK_LENGTHSCALE_RANGE,
    GPSurrogate,
    MetaPriorSurrogate,
    MultiTaskSurrogate,
)
from metapbt.population.explorers.patience import PatienceSettings, PatientExplorer
from metapbt.population.explorers.schedule import ScheduleExplorer
from metapbt.population.explorers.trust_region import TrustRegion, TrustRegionSettings
from metapbt.surrogates import stock_pb2_kernel
from metapbt.surrogates.dkl import DKLSettings


@dataclass(frozen=True)
class Method:
    """A named composition of an exploit rule and a (fresh, stateful) explorer."""

    name: str
    exploit: ExploitRule
    explorer: Explorer


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: whether it needs meta-data, and how to build it.

    Attributes:
        name: The method's name.
        uses_metadata: It needs a [`MetaSource`][metapbt.metadata.source.MetaSource] (and no other
            method accepts one).
        build: ``build(quantile, source)`` returns a fresh
            [`Method`][metapbt.population.methods.Method].
    """

    name: str
    uses_metadata: bool
    build: Callable[[float, MetaSource | None], Method]


METHODS: Registry[MethodSpec] = Registry("method")


def _register(name: str, uses_metadata: bool = False) -> Callable:
    def decorator(build: Callable[..., Method]) -> Callable[..., Method]:
        spec = MethodSpec(name, uses_metadata, build)
        METHODS.register(name)(lambda: spec)
        return build

    return decorator


@_register("random")
def _random(quantile: float, source: None) -> Method:
    return Method("random", NoExploit(), NoPerturbation())


@_register("pbt")
def _pbt(quantile: float, source: None) -> Method:
    return Method("pbt", TruncationSelection(quantile), PBTPerturbation())


@_register("pb2")
def _pb2(quantile: float, source: None) -> Method:
    surrogate = GPSurrogate(stock_pb2_kernel(), clip_lengthscale=STOCK_LENGTHSCALE_RANGE)
    explorer = PB2Explorer(stock_pb2(), surrogate, UCBRule(std=False))
    return Method("pb2", TruncationSelection(quantile), explorer)


@_register("pb2-star")
def _pb2_star(quantile: float, source: None) -> Method:
    explorer = PB2Explorer(pb2_star(), GPSurrogate(), UCBRule())
    return Method("pb2-star", TruncationSelection(quantile), explorer)


@_register("pb2-mix")
def _pb2_mix(quantile: float, source: None) -> Method:
    """PB2-Mix: PB2* with categorical parameters.

    TV.EXP3.M bandits choose the categories; the GP has a mixture kernel over them and is
    maximised over the numeric part with the picked categories held fixed.
    """
    explorer = PB2Explorer(pb2_star(), GPSurrogate(), UCBRule(), categorical=CategoricalBandit())
    return Method("pb2-mix", TruncationSelection(quantile), explorer)


@_register("meta-prior", uses_metadata=True)
def _meta_prior(quantile: float, source: MetaSource) -> Method:
    """MetaPrior-PB2; on a mixed space, with PB2-Mix's categorical step.

    See [`MIXED_META`][metapbt.population.methods.MIXED_META].
    """
    settings = pb2_star()
    meta = MetaModels(source, settings.log_space)
    explorer = PB2Explorer(
        settings, MetaPriorSurrogate(meta), UCBRule(), meta, categorical=CategoricalBandit()
    )
    return Method("meta-prior", TruncationSelection(quantile), explorer)


@_register("multitask", uses_metadata=True)
def _multitask(quantile: float, source: MetaSource) -> Method:
    settings = pb2_star()
    meta = MetaModels(source, settings.log_space)
    explorer = PB2Explorer(settings, MultiTaskSurrogate(meta), UCBRule(), meta)
    return Method("multitask", TruncationSelection(quantile), explorer)


@_register("taf", uses_metadata=True)
def _taf(quantile: float, source: MetaSource) -> Method:
    """TAF-PB2; on a mixed space, with PB2-Mix's categorical step.

    See [`MIXED_META`][metapbt.population.methods.MIXED_META].
    """
    settings = pb2_star()
    meta = MetaModels(source, settings.log_space)
    explorer = PB2Explorer(
        settings, GPSurrogate(), TAFRule(meta), meta, categorical=CategoricalBandit()
    )
    return Method("taf", TruncationSelection(quantile), explorer)


@_register("schedule-replay", uses_metadata=True)
def _schedule_replay(quantile: float, source: MetaSource) -> Method:
    """Every member replays a schedule from the meta-data for the whole run (no exploit)."""
    return Method("schedule-replay", NoExploit(), ScheduleExplorer(source))


@_register("schedule-pbt", uses_metadata=True)
def _schedule_pbt(quantile: float, source: MetaSource) -> Method:
    """Schedules from the meta-data under truncation selection: a clone takes its donor's."""
    return Method("schedule-pbt", TruncationSelection(quantile), ScheduleExplorer(source))


MIXED_META = ("meta-prior", "taf")
"""The meta methods that take a space with categorical parameters.

PB2-Mix's bandit chooses the categories; the target's GP and every meta task's GP use PB2-Mix's
mixture kernel over (categories, numbers), so a meta task's prediction at the chosen category
leans on its rows of that category, and on its rows of other categories only as far as its
fitted mixture (the kernel's ``mix``) shares them; a task with no row of that category predicts
from the others through the shared part alone. ``multitask`` refuses a mixed space: its
multi-task kernel has no mixture with categories."""


def dkl_settings() -> DKLSettings:
    """The deep-kernel settings of ``dkl`` (docs/guides/deep-kernels.md)."""
    return DKLSettings()


def meta_dkl_settings() -> DKLSettings:
    """``meta-dkl``'s fine-tuning settings: ``dkl``'s with fewer steps and no weight prior.

    Fine-tuning a pre-trained state needs fewer steps than a fit from scratch (and overfits
    the target's few rows with more). The prior that keeps ``dkl``'s randomly initialised
    features near their start would hold the pre-trained ones near theirs: without it
    ``meta-dkl``'s picks landed closer to the optimum on all three problems of
    ``benchmarks/explore_quality.py`` (10 seeds: 0.344 / 0.515 / 0.354 against 0.388 /
    0.624 / 0.353 with it).
    """
    return replace(dkl_settings(), steps=100, prior_std=None)


@_register("dkl")
def _dkl(quantile: float, source: None) -> Method:
    explorer = PB2Explorer(pb2_star(), DeepKernelSurrogate(dkl_settings()), UCBRule())
    return Method("dkl", TruncationSelection(quantile), explorer)


@_register("meta-dkl", uses_metadata=True)
def _meta_dkl(quantile: float, source: MetaSource) -> Method:
    settings = pb2_star()
    surrogate = DeepKernelSurrogate(meta_dkl_settings(), source, log_space=settings.log_space)
    explorer = PB2Explorer(settings, surrogate, UCBRule())
    return Method("meta-dkl", TruncationSelection(quantile), explorer)


PB2_FAMILY = ("pb2", "pb2-star", "meta-prior", "multitask", "taf", "dkl", "meta-dkl")
"""The methods whose explorer is a `PB2Explorer` (each has a ``-tr`` variant)."""


def trust_region_settings() -> TrustRegionSettings:
    """The ``-tr`` variants' box (docs/concepts.md, "Trust regions")."""
    return TrustRegionSettings()


def _with_trust_region(base: str) -> Callable[[float, MetaSource | None], Method]:
    def build(quantile: float, source: MetaSource | None) -> Method:
        method = METHODS.make(base).build(quantile, source)
        if not isinstance(method.explorer, PB2Explorer):  # never: PB2_FAMILY's are
            raise TypeError(f"{base!r} has no PB2Explorer to give a trust region")
        explorer = replace(method.explorer, trust_region=TrustRegion(trust_region_settings()))
        return Method(f"{base}-tr", method.exploit, explorer)

    return build


for _base in PB2_FAMILY:
    _register(f"{_base}-tr", uses_metadata=METHODS.make(_base).uses_metadata)(
        _with_trust_region(_base)
    )


PATIENT_BASES = ("pbt", *PB2_FAMILY)
"""The methods with a ``-patient`` variant."""


def patience_settings() -> PatienceSettings:
    """The ``-patient`` variants' rule (docs/concepts.md, "Patience")."""
    return PatienceSettings()


def _with_patience(base: str) -> Callable[[float, MetaSource | None], Method]:
    def build(quantile: float, source: MetaSource | None) -> Method:
        method = METHODS.make(base).build(quantile, source)
        explorer = PatientExplorer(method.explorer, patience_settings())
        return Method(f"{base}-patient", method.exploit, explorer)

    return build


for _base in PATIENT_BASES:
    _register(f"{_base}-patient", uses_metadata=METHODS.make(_base).uses_metadata)(
        _with_patience(_base)
    )


def spec(name: str) -> MethodSpec:
    """The registered method ``name``.

    Raises:
        UnknownNameError: For an unknown name (the message lists the known ones).
    """
    return METHODS.make(name)


def uses_metadata(name: str) -> bool:
    """Whether the method ``name`` needs meta-data."""
    return spec(name).uses_metadata


def check_metadata(name: str, given: bool) -> None:
    """Raise unless the method ``name`` is given meta-data exactly when it uses some.

    The one place these two messages are written (the CLI, study files and the Ray adapter
    reach it through [`make`][metapbt.population.methods.make] or
    [`metapbt.runs.resolve.meta_source`][metapbt.runs.resolve.meta_source]).

    Raises:
        UnknownNameError: For an unknown name.
        ConfigError: If a meta method gets no meta-data, or another method gets some.
    """
    uses = spec(name).uses_metadata
    if uses and not given:
        raise ConfigError(
            f"{name} needs meta-data: a store built by `metapbt metadata build` "
            "(CLI and study files: metadata, Ray Tune: metadata=)"
        )
    if given and not uses:
        raise ConfigError(
            f"method {name!r} does not use meta-data; drop it (CLI: --metadata, study files: "
            "metadata, Ray Tune: metadata=)"
        )


def make(name: str, quantile: float = 0.25, metadata: MetaSource | None = None) -> Method:
    """Build the method ``name`` with a fresh explorer.

    Raises:
        UnknownNameError: For an unknown name (the message lists the known ones).
        ConfigError: If a meta method gets no meta-data, or another method gets some.
    """
    check_metadata(name, given=metadata is not None)
    return spec(name).build(quantile, metadata)


def names() -> list[str]:
    """Registered method names."""
    return METHODS.names()

"""Named methods: a method is an exploit rule composed with an explore strategy.

========== =================== ============================================================
name       exploit             explore
========== =================== ============================================================
random     none                none: N independent configurations (random search)
pbt        truncation (q)      resample (p = 0.25) or multiply by 0.8 / 1.2, clipped
pb2        truncation (q)      Ray's PB2: free GP kernel, UCB adding the variance, copy donor
pb2-star   truncation (q)      PB2*: bounded kernel, UCB with std, log space, random draw
meta-prior truncation (q)      PB2* on the residual of an RGPE-weighted meta prior mean
multitask  truncation (q)      PB2* with a multi-task GP over the target and top-4 tasks
taf        truncation (q)      PB2* GP, transfer acquisition (EI + weighted meta gains)
dkl        truncation (q)      PB2* with a deep-kernel GP (neural features under the TV kernel)
meta-dkl   truncation (q)      dkl pre-trained on the other tasks' meta-data, fine-tuned
========== =================== ============================================================

The meta methods need ``metadata`` (a :class:`MetaSource`); the others refuse it.
"""

from __future__ import annotations

from dataclasses import dataclass

from metapbt._registry import Registry
from metapbt.errors import ConfigError
from metapbt.population.exploit import ExploitRule, NoExploit, TruncationSelection
from metapbt.population.explorers import (
    Explorer,
    NoPerturbation,
    PB2Explorer,
    PBTPerturbation,
    pb2_star,
    stock_pb2,
)
from metapbt.population.explorers.dkl import DKLExplorer
from metapbt.population.explorers.meta import (
    MetaPriorExplorer,
    MetaSource,
    MultiTaskExplorer,
    TAFExplorer,
)
from metapbt.surrogates.dkl import DKLSettings


@dataclass(frozen=True)
class Method:
    """A named composition of an exploit rule and a (fresh, stateful) explorer."""

    name: str
    exploit: ExploitRule
    explorer: Explorer


METHODS: Registry[Method] = Registry("method")


META_METHODS = ("meta-prior", "multitask", "taf", "meta-dkl")


@METHODS.register("random")
def _random(quantile: float, metadata: None) -> Method:
    return Method("random", NoExploit(), NoPerturbation())


@METHODS.register("pbt")
def _pbt(quantile: float, metadata: None) -> Method:
    return Method("pbt", TruncationSelection(quantile), PBTPerturbation())


@METHODS.register("pb2")
def _pb2(quantile: float, metadata: None) -> Method:
    return Method("pb2", TruncationSelection(quantile), PB2Explorer(stock_pb2()))


@METHODS.register("pb2-star")
def _pb2_star(quantile: float, metadata: None) -> Method:
    return Method("pb2-star", TruncationSelection(quantile), PB2Explorer(pb2_star()))


@METHODS.register("meta-prior")
def _meta_prior(quantile: float, metadata: MetaSource) -> Method:
    explorer = MetaPriorExplorer(pb2_star(), source=metadata)
    return Method("meta-prior", TruncationSelection(quantile), explorer)


@METHODS.register("multitask")
def _multitask(quantile: float, metadata: MetaSource) -> Method:
    explorer = MultiTaskExplorer(pb2_star(), source=metadata)
    return Method("multitask", TruncationSelection(quantile), explorer)


@METHODS.register("taf")
def _taf(quantile: float, metadata: MetaSource) -> Method:
    return Method("taf", TruncationSelection(quantile), TAFExplorer(pb2_star(), source=metadata))


@METHODS.register("dkl")
def _dkl(quantile: float, metadata: None) -> Method:
    return Method("dkl", TruncationSelection(quantile), DKLExplorer(pb2_star()))


@METHODS.register("meta-dkl")
def _meta_dkl(quantile: float, metadata: MetaSource | None) -> Method:
    if metadata is None:
        raise ConfigError("meta-dkl needs meta-data: pass a MetaSource (CLI: --metadata)")
    # Fine-tuning a pre-trained state needs fewer steps than a fit from scratch (and overfits
    # the target's few rows with more).
    explorer = DKLExplorer(pb2_star(), dkl=DKLSettings(steps=100), source=metadata)
    return Method("meta-dkl", TruncationSelection(quantile), explorer)


def make(name: str, quantile: float = 0.25, metadata: MetaSource | None = None) -> Method:
    """Build the method ``name`` with a fresh explorer.

    Raises:
        UnknownNameError: For an unknown name (the message lists the known ones).
        ConfigError: If a meta method gets no meta-data, or another method gets some.
    """
    if name in METHODS and metadata is not None and name not in META_METHODS:
        raise ConfigError(f"method {name!r} does not use meta-data; drop --metadata")
    return METHODS.make(name, quantile=quantile, metadata=metadata)


def names() -> list[str]:
    """Registered method names."""
    return METHODS.names()

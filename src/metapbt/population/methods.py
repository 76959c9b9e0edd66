"""Named methods: a method is an exploit rule composed with an explore strategy.

========== =================== ============================================================
name       exploit             explore
========== =================== ============================================================
random     none                none: N independent configurations (random search)
pbt        truncation (q)      resample (p = 0.25) or multiply by 0.8 / 1.2, clipped
pb2        truncation (q)      Ray's PB2: free GP kernel, UCB adding the variance, copy donor
pb2-star   truncation (q)      PB2*: bounded kernel, UCB with std, log space, random draw
========== =================== ============================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from metapbt._registry import Registry
from metapbt.population.exploit import ExploitRule, NoExploit, TruncationSelection
from metapbt.population.explorers import (
    Explorer,
    NoPerturbation,
    PB2Explorer,
    PBTPerturbation,
    pb2_star,
    stock_pb2,
)


@dataclass(frozen=True)
class Method:
    """A named composition of an exploit rule and a (fresh, stateful) explorer."""

    name: str
    exploit: ExploitRule
    explorer: Explorer


METHODS: Registry[Method] = Registry("method")


@METHODS.register("random")
def _random(quantile: float = 0.25) -> Method:
    return Method("random", NoExploit(), NoPerturbation())


@METHODS.register("pbt")
def _pbt(quantile: float = 0.25) -> Method:
    return Method("pbt", TruncationSelection(quantile), PBTPerturbation())


@METHODS.register("pb2")
def _pb2(quantile: float = 0.25) -> Method:
    return Method("pb2", TruncationSelection(quantile), PB2Explorer(stock_pb2()))


@METHODS.register("pb2-star")
def _pb2_star(quantile: float = 0.25) -> Method:
    return Method("pb2-star", TruncationSelection(quantile), PB2Explorer(pb2_star()))


def make(name: str, quantile: float = 0.25) -> Method:
    """Build the method ``name`` with a fresh explorer.

    Raises:
        UnknownNameError: For an unknown name (the message lists the known ones).
    """
    return METHODS.make(name, quantile=quantile)


def names() -> list[str]:
    """Registered method names."""
    return METHODS.names()

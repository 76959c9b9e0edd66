"""Explore strategies: what hyperparameters a cloned member continues with."""

from metapbt.population.explorers.base import Explorer, ExploreRequest, RoundContext
from metapbt.population.explorers.basic import NoPerturbation, PBTPerturbation
from metapbt.population.explorers.pb2 import PB2Explorer, PB2Settings, pb2_star, stock_pb2

__all__ = [
    "ExploreRequest",
    "Explorer",
    "NoPerturbation",
    "PB2Explorer",
    "PB2Settings",
    "PBTPerturbation",
    "RoundContext",
    "pb2_star",
    "stock_pb2",
]

"""Surrogate models, acquisition functions and the acquisition optimiser (JAX)."""

from metapbt.surrogates.acquisition import expected_improvement, ucb, ucb_kappa, ucb_variance
from metapbt.surrogates.gp import ExactGP, FittedGP, bucket_size, negative_log_likelihood
from metapbt.surrogates.kernels import (
    Kernel,
    MultiTaskKernel,
    TimeVaryingMixture,
    TimeVaryingSE,
    stock_pb2_kernel,
)
from metapbt.surrogates.optimize import maximize_unit_box
from metapbt.surrogates.params import Bounded, Positive

__all__ = [
    "Bounded",
    "ExactGP",
    "FittedGP",
    "Kernel",
    "MultiTaskKernel",
    "Positive",
    "TimeVaryingMixture",
    "TimeVaryingSE",
    "bucket_size",
    "expected_improvement",
    "maximize_unit_box",
    "negative_log_likelihood",
    "stock_pb2_kernel",
    "ucb",
    "ucb_kappa",
    "ucb_variance",
]

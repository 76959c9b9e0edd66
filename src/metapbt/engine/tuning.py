"""What the engine tunes during training, and the structural settings a search space needs.

Every tuned hyperparameter is a per-member traced value of the train state, so a member's new
value never recompiles the interval program. Three of them change the *shape* of an update
(how many passes, how many optimiser steps), which a compiled program cannot do per member;
the engine traces them as follows:

- ``epochs`` (an integer): the program runs the space's largest count
  (``PPOConfig.max_epochs``) and masks each member's passes beyond its own. A member's update
  then equals the one a program whose largest count is its own gives (its passes' permutation
  keys are folded in per pass, so they do not depend on the largest count; they are other
  draws than an untuned run's, which splits its key into ``epochs``); the cost is the largest
  count's compute for every member (XLA runs a masked pass in full).
- ``minibatches`` (a divisor list): the batch is cut into ``PPOConfig.minibatch_chunks`` equal
  chunks (the least common multiple of the choices); a member with ``k`` minibatches averages
  the gradients of ``chunks / k`` consecutive chunks, taken at the same weights, and steps
  once. The mean of equal chunks' gradients is the minibatch's gradient, and advantages are
  standardised per minibatch as before, so the update equals the untuned one with
  ``minibatch_size = batch / k``; the compute per pass is the same, plus one optimiser step
  per chunk (masked where the minibatch is not complete).
- ``adv_norm`` (a bool): standardise advantages per minibatch (the default) or not, a select
  inside the update.

``gamma`` is a traced discount like ``lambda``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, TypedDict

from metapbt.engine.presets import PPOConfig
from metapbt.errors import ConfigError
from metapbt.population.space import Categorical, Float, Int, Param, SearchSpace

TUNABLE: dict[str, str] = {
    "lr": "Adam's learning rate",
    "lambda": "GAE lambda",
    "clip": "PPO's clip range",
    "ent_coef": "entropy bonus weight",
    "gamma": "discount factor, in (0, 1]",
    "epochs": "passes over the batch per iteration (Int, or a Categorical of ints)",
    "minibatches": "minibatches per pass (a Categorical of ints, or Int; each divides the batch)",
    "adv_norm": "standardise advantages per minibatch (Categorical([True, False]))",
}
"""Hyperparameters the engine can tune during training, with what each is."""

SHAPED = ("epochs", "minibatches")
"""Tuned counts that need a structural bound in `PPOConfig` (`for_space`)."""


def check_names(names: Sequence[str]) -> None:
    """Raise unless every name is one the engine can tune."""
    unknown = [n for n in names if n not in TUNABLE]
    if unknown:
        raise ConfigError(f"the engine cannot tune {unknown}; tunable: {list(TUNABLE)}")


def values_of(param: Param) -> list[Any]:
    """Every value an integer or categorical parameter can take (a Float: its bounds)."""
    if isinstance(param, Categorical):
        return list(param.choices)
    if isinstance(param, Int):
        return list(range(int(param.low), int(param.high) + 1))
    return [param.low, param.high]


class _CountBounds(TypedDict, total=False):
    """The structural fields of `PPOConfig` that tuned counts change."""

    max_epochs: int
    minibatch_chunks: int


def for_space(config: PPOConfig, space: SearchSpace) -> PPOConfig:
    """``config`` with the structural bounds tuning ``space`` needs (itself if none).

    Raises:
        ConfigError: If ``space`` lacks ``lr``, names a parameter the engine cannot tune, or
            gives one values it cannot take (a fractional epoch count, a minibatch count that
            does not divide the batch, a string choice, a non-bool ``adv_norm``).
    """
    check_names(space.names)
    if "lr" not in space.names:
        raise ConfigError(
            f"the engine needs 'lr' in the search space, got {space.names}; add e.g. "
            "lr=log:1e-5:1e-3 (a narrow range holds it nearly fixed)"
        )
    changes: _CountBounds = {}
    for name in space.names:
        param = space[name]
        _check_kind(name, param)
        if name == "epochs":
            changes["max_epochs"] = max(values_of(param))
        elif name == "minibatches":
            counts = values_of(param)
            chunks = math.lcm(*counts)
            if config.batch_size % chunks:
                raise ConfigError(
                    f"minibatch counts {counts} need a batch divisible by each of them and by "
                    f"their least common multiple {chunks}; the preset's batch is "
                    f"{config.batch_size} ({config.num_envs} envs x {config.rollout_len} steps)"
                )
            changes["minibatch_chunks"] = chunks
    return replace(config, **changes) if changes else config


def _check_kind(name: str, param: Param) -> None:
    """Raise unless ``param`` is a kind the engine takes for ``name``."""
    if isinstance(param, Categorical) and isinstance(param.choices[0], str):
        raise ConfigError(
            f"the engine takes numbers and booleans, {name!r} has the string choices "
            f"{list(param.choices)}"
        )
    if name == "adv_norm":
        if not (isinstance(param, Categorical) and isinstance(param.choices[0], bool)):
            raise ConfigError(f"'adv_norm' must be Categorical([True, False]), got {param}")
        return
    if isinstance(param, Categorical) and isinstance(param.choices[0], bool):
        raise ConfigError(f"{name!r} takes numbers, got the bool choices {list(param.choices)}")
    if name in SHAPED:
        counts = values_of(param)
        integral = isinstance(param, Int) or (
            isinstance(param, Categorical) and isinstance(param.choices[0], int)
        )
        if not integral or min(counts) < 1:
            raise ConfigError(
                f"{name!r} must be an Int or a Categorical of positive ints, got {param}"
            )
    if name == "gamma" and not (min(values_of(param)) > 0 and max(values_of(param)) <= 1):
        raise ConfigError(f"'gamma' must lie in (0, 1], got {param}")
    if not isinstance(param, Float | Categorical):  # pragma: no cover - SearchSpace refuses
        raise ConfigError(f"{name!r}: unknown parameter kind {param}")


def check_values(config: PPOConfig, configs: Sequence[Mapping[str, Any]]) -> None:
    """Raise unless every member's shaped counts fit the program's bounds.

    Raises:
        ConfigError: If ``epochs`` or ``minibatches`` is tuned on a config built without
            `for_space`, or a member's count exceeds ``max_epochs`` or does not divide
            ``minibatch_chunks``.
    """
    names = list(configs[0])
    if "epochs" in names:
        bound = config.max_epochs
        if bound is None:
            raise ConfigError(_unshaped("epochs"))
        bad = [c["epochs"] for c in configs if not 1 <= _count(c["epochs"]) <= bound]
        if bad:
            raise ConfigError(f"epochs {bad} outside 1..{bound} (the program's max_epochs)")
    if "minibatches" in names:
        chunks = config.minibatch_chunks
        if chunks is None:
            raise ConfigError(_unshaped("minibatches"))
        bad = [
            c["minibatches"]
            for c in configs
            if _count(c["minibatches"]) < 1 or chunks % _count(c["minibatches"])
        ]
        if bad:
            raise ConfigError(
                f"minibatch counts {bad} are not positive divisors of the program's {chunks} chunks"
            )


def _count(value: Any) -> int:
    """A tuned count as an int (configs hold ints; a float must be integral)."""
    if float(value) != int(value):
        raise ConfigError(f"a count must be a whole number, got {value!r}")
    return int(value)


def _unshaped(name: str) -> str:
    return (
        f"tuning {name!r} needs a trainer built for the search space: pass "
        "metapbt.engine.tuning.for_space(preset, space) as its config"
    )

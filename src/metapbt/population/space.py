"""Search spaces: the tuned hyperparameters, their bounds and scales, and the unit cube.

Every explorer works in the unit cube ``[0, 1]^d``. A parameter maps to it linearly, or through
its logarithm when it is log-scaled and the caller asks for log space (PB2* does; stock PB2
does not, see `metapbt.population.explorers.pb2`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from metapbt.errors import ConfigError

Config = dict[str, Any]
"""One member's hyperparameters, by name: numbers, or a categorical's choice."""

Choice = str | int | float | bool
"""What a categorical's choices may be: one JSON-able type per parameter."""

Scalar = float | np.number[Any] | np.ndarray
"""One number as [`Float.cast`][metapbt.population.space.Float.cast] takes it.

A Python or NumPy number, or a one-element array.
"""


@dataclass(frozen=True)
class Float:
    """A real-valued hyperparameter in ``[low, high]``.

    Args:
        low: Lower bound (inclusive).
        high: Upper bound (inclusive); must be greater than ``low``.
        log: Sample and (optionally) model on a log scale; both bounds must then be positive.
    """

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        for bound in ("low", "high"):
            value = getattr(self, bound)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{bound} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ConfigError(f"{bound} must be finite, got {value!r}")
        if not self.low < self.high:
            raise ConfigError(
                f"expected low < high, got low={self.low!r}, high={self.high!r}; "
                "swap them or widen the range"
            )
        if self.log and self.low <= 0:
            raise ConfigError(
                f"a log-scaled parameter needs positive bounds, got low={self.low!r}; "
                "use log=False or a positive lower bound"
            )
        if self.log and not math.log(self.low) < math.log(self.high):
            raise ConfigError(  # found by the property tests: the unit cube divided by zero
                f"the range [{self.low!r}, {self.high!r}] is too narrow for a log scale (its "
                "logarithms are equal as floats); widen it or use log=False"
            )
        if not math.isfinite(float(self.high) - float(self.low)):
            raise ConfigError(  # found by the property tests: every draw landed on ``high``
                f"the range [{self.low!r}, {self.high!r}] is wider than a float can hold; "
                "narrow it or use log=True"
            )

    @property
    def kind(self) -> str:
        """``"float"`` or ``"int"``, as stored in files."""
        return "float"

    def _warp(self, value: np.ndarray | float, log_space: bool) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        return np.log(value) if (self.log and log_space) else value

    def _bounds(self, log_space: bool) -> tuple[float, float]:
        if self.log and log_space:
            return math.log(self.low), math.log(self.high)
        return float(self.low), float(self.high)

    def to_unit(self, value: np.ndarray | float, log_space: bool = True) -> np.ndarray:
        """Map values to ``[0, 1]`` (values outside the bounds map outside it, unclipped)."""
        lo, hi = self._bounds(log_space)
        return (self._warp(value, log_space) - lo) / (hi - lo)

    def from_unit(self, unit: np.ndarray | float, log_space: bool = True) -> np.ndarray:
        """Map ``[0, 1]`` back to the parameter's range (clipped to the bounds)."""
        lo, hi = self._bounds(log_space)
        raw = lo + np.clip(np.asarray(unit, dtype=np.float64), 0.0, 1.0) * (hi - lo)
        value = np.exp(raw) if (self.log and log_space) else raw
        return self.clip(value)

    def clip(self, value: np.ndarray | float) -> np.ndarray:
        """Clip values into the bounds."""
        return np.clip(np.asarray(value, dtype=np.float64), self.low, self.high)

    def sample(self, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
        """Draw uniformly (log-uniformly if ``log``) from the bounds."""
        return self.from_unit(rng.uniform(0.0, 1.0, size=size), log_space=True)

    def cast(self, value: Scalar) -> float | int:
        """Convert one value to the Python type stored in configs."""
        return float(value)


MAX_EXACT_INT = 2**53
"""The largest magnitude an [`Int`][metapbt.population.space.Int] bound may have.

Every integer up to it is a float64.
"""


@dataclass(frozen=True)
class Int(Float):
    """An integer hyperparameter in ``[low, high]`` (e.g. a minibatch count).

    Explorers work on a continuous relaxation; values are rounded when they leave the unit cube.
    """

    def __post_init__(self) -> None:
        for bound in ("low", "high"):
            value = getattr(self, bound)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"Int {bound} must be an int, got {value!r}")
            if abs(value) > MAX_EXACT_INT:  # values travel as float64 (unit cube, histories)
                raise ConfigError(
                    f"Int {bound} {value!r} is beyond +-2**53, where float64 (which carries "
                    "every value) stops holding every integer"
                )
        super().__post_init__()

    @property
    def kind(self) -> str:  # noqa: D102 - documented on Float
        return "int"

    def clip(self, value: np.ndarray | float) -> np.ndarray:
        """Round to the nearest integer and clip into the bounds."""
        return np.clip(np.rint(np.asarray(value, dtype=np.float64)), self.low, self.high)

    def cast(self, value: Scalar) -> float | int:
        """Convert one value to a Python ``int``."""
        return int(np.rint(value))


@dataclass(frozen=True)
class Categorical:
    """A hyperparameter chosen from a list (an optimiser, advantage normalisation on or off).

    Configs hold the choice itself; histories store it as written, and models that need a
    number see its index in ``choices``. Which methods handle one: ``random``, ``pbt``,
    ``pb2-mix``, ``meta-prior`` and ``taf``
    ([`metapbt.population.methods`][metapbt.population.methods]); the others refuse a space with
    one.

    Args:
        choices: At least two distinct values of one JSON-able type (``str``, ``int``,
            ``float`` or ``bool``).
    """

    choices: tuple[Choice, ...]

    def __post_init__(self) -> None:
        choices = tuple(self.choices)
        object.__setattr__(self, "choices", choices)
        if len(choices) < 2:
            raise ConfigError(f"a categorical needs at least 2 choices, got {list(choices)}")
        kinds = {type(c) for c in choices}
        if len(kinds) != 1 or not kinds <= {str, int, float, bool}:
            names = sorted(k.__name__ for k in kinds)
            raise ConfigError(
                f"a categorical's choices must all be str, all int, all float or all bool, "
                f"got {names}"
            )
        if any(isinstance(c, float) and not math.isfinite(c) for c in choices):
            raise ConfigError(f"a categorical's choices must be finite, got {list(choices)}")
        if len(set(choices)) != len(choices):
            raise ConfigError(f"a categorical's choices must be distinct, got {list(choices)}")

    @property
    def kind(self) -> str:
        """``"categorical"``, as stored in files."""
        return "categorical"

    def index(self, value: Any) -> int:
        """The position of ``value`` in ``choices``.

        Raises:
            ConfigError: If ``value`` is not one of the choices (of their type: ``1`` is not
                ``True``).
        """
        value = value.item() if isinstance(value, np.generic) else value
        for i, choice in enumerate(self.choices):
            if type(choice) is type(value) and choice == value:
                return i
        raise ConfigError(f"{value!r} is not one of the choices {list(self.choices)}")

    def sample(self, rng: np.random.Generator) -> Choice:
        """One choice, uniformly."""
        return self.choices[int(rng.integers(len(self.choices)))]


Param = Float | Int | Categorical

_KINDS: dict[str, type[Float]] = {"float": Float, "int": Int}


class SearchSpace:
    """An ordered set of named hyperparameters.

    Args:
        params: Mapping from name to [`Float`][metapbt.population.space.Float] or
            [`Int`][metapbt.population.space.Int]; its order is the column order everywhere
            (unit-cube vectors, history columns).

    Examples:
        ```python
        space = SearchSpace(
            {"lr": Float(1e-5, 1e-3, log=True), "clip": Float(0.1, 0.5)}
        )
        config = space.sample(np.random.default_rng(0))
        ```
    """

    def __init__(self, params: Mapping[str, Param]) -> None:
        if not params:
            raise ConfigError("a search space needs at least one parameter, got none")
        for name, param in params.items():
            if not isinstance(name, str) or not name:
                raise ConfigError(f"parameter names must be non-empty strings, got {name!r}")
            if not isinstance(param, Float | Categorical):
                raise ConfigError(
                    f"parameter {name!r} must be a Float, Int or Categorical, got "
                    f"{type(param).__name__}"
                )
        self._params: dict[str, Param] = dict(params)

    @property
    def names(self) -> list[str]:
        """Parameter names in column order."""
        return list(self._params)

    @property
    def dim(self) -> int:
        """Number of parameters."""
        return len(self._params)

    @property
    def categorical_names(self) -> list[str]:
        """The names of the categorical parameters, in column order."""
        return [n for n, p in self._params.items() if isinstance(p, Categorical)]

    @property
    def categoricals(self) -> dict[str, Categorical]:
        """The categorical parameters by name, in column order."""
        return {n: p for n, p in self._params.items() if isinstance(p, Categorical)}

    def numeric(self) -> SearchSpace:
        """The numeric parameters alone (this space itself when it has no categorical).

        Raises:
            ConfigError: If every parameter is categorical.
        """
        if not self.categorical_names:
            return self
        params = {n: p for n, p in self._params.items() if not isinstance(p, Categorical)}
        if not params:
            raise ConfigError("every parameter is categorical: no numeric part to model")
        return SearchSpace(params)

    def encode(self, config: Mapping[str, Any]) -> list[float]:
        """One config as numbers in column order: a categorical's choice becomes its index."""
        return [
            float(p.index(config[n])) if isinstance(p, Categorical) else float(config[n])
            for n, p in self._params.items()
        ]

    def decode(self, name: str, values: Sequence[float] | np.ndarray) -> list[Any]:
        """A column of numbers back as ``name``'s values.

        The inverse of [`encode`][metapbt.population.space.SearchSpace.encode] for one column.
        """
        param = self._params[name]
        if isinstance(param, Categorical):
            return [param.choices[int(v)] for v in values]
        return [param.cast(v) for v in values]

    def _numeric(self, what: str) -> dict[str, Float]:
        """The parameters, refusing a categorical where ``what`` needs numbers."""
        if self.categorical_names:
            raise ConfigError(
                f"{what} needs numeric parameters, but {self.categorical_names} are "
                "categorical: use random, pbt, pb2-mix, meta-prior or taf with categorical "
                "parameters"
            )
        return {n: p for n, p in self._params.items() if not isinstance(p, Categorical)}

    def __getitem__(self, name: str) -> Param:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SearchSpace):
            return NotImplemented
        return list(self._params.items()) == list(other._params.items())

    def __hash__(self) -> int:
        return hash(tuple(self._params.items()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {v!r}" for k, v in self._params.items())
        return f"SearchSpace({{{inner}}})"

    def validate(self, config: Mapping[str, Any]) -> Config:
        """Check that ``config`` has exactly this space's names, with values inside the bounds.

        Returns:
            A fresh config with values cast to their parameter types.

        Raises:
            ConfigError: On missing or unknown names, non-finite or out-of-bounds values.
        """
        missing = [n for n in self._params if n not in config]
        extra = [n for n in config if n not in self._params]
        if missing or extra:
            raise ConfigError(
                f"config keys must be {self.names}; missing {missing}, unexpected {extra}"
            )
        out: Config = {}
        for name, param in self._params.items():
            value = config[name]
            if isinstance(param, Categorical):
                try:
                    out[name] = param.choices[param.index(value)]
                except ConfigError as err:
                    raise ConfigError(f"{name}: {err}") from None
                continue
            if not isinstance(value, int | float | np.number) or not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {value!r}")
            if not param.low <= value <= param.high:
                raise ConfigError(
                    f"{name}={value!r} is outside its bounds [{param.low}, {param.high}]"
                )
            out[name] = param.cast(value)
        return out

    def narrowed(self, ranges: Mapping[str, Sequence[float]]) -> SearchSpace:
        """This space with some parameters' bounds narrowed to ``ranges`` (same scales, order).

        Used for initial draws from part of the space (e.g. a high-``lr`` start); the
        explorers keep the full space.

        Raises:
            ConfigError: On an unknown name, or a range not strictly inside its parameter's
                bounds (``low < high``, both within ``[param.low, param.high]``).
        """
        params = dict(self._params)
        for name, bounds in ranges.items():
            if name not in params:
                raise ConfigError(f"cannot narrow {name!r}: not a parameter of {self.names}")
            param = params[name]
            if isinstance(param, Categorical):
                raise ConfigError(f"cannot narrow {name!r}: it is categorical")
            try:
                low, high = bounds
            except (TypeError, ValueError):
                raise ConfigError(
                    f"the range of {name!r} must be [low, high], got {bounds!r}"
                ) from None
            if not (param.low <= low < high <= param.high):
                raise ConfigError(
                    f"the range of {name!r} must satisfy {param.low!r} <= low < high <= "
                    f"{param.high!r}, got [{low!r}, {high!r}]"
                )
            if isinstance(param, Int):  # whole bounds, however written (1.0 from a file)
                if float(low) != int(low) or float(high) != int(high):
                    raise ConfigError(
                        f"the range of the integer {name!r} needs whole bounds, got "
                        f"[{low!r}, {high!r}]"
                    )
                low, high = int(low), int(high)
            params[name] = type(param)(low, high, param.log)
        return SearchSpace(params)

    def sample(self, rng: np.random.Generator) -> Config:
        """Draw one config (uniform, or log-uniform for log-scaled parameters)."""
        return {
            name: p.sample(rng) if isinstance(p, Categorical) else p.cast(p.sample(rng))
            for name, p in self._params.items()
        }

    def clip(self, config: Mapping[str, Any]) -> Config:
        """Clip (and round, for ints) every value into its bounds; a categorical's is checked."""
        return {
            name: p.choices[p.index(config[name])]
            if isinstance(p, Categorical)
            else p.cast(p.clip(config[name]))
            for name, p in self._params.items()
        }

    def to_unit(
        self, configs: Mapping[str, float] | Sequence[Mapping[str, float]], log_space: bool = True
    ) -> np.ndarray:
        """Map one config to a ``[d]`` vector, or a sequence of configs to ``[n, d]``."""
        params = self._numeric("the unit cube")
        if isinstance(configs, Mapping):
            return np.array([p.to_unit(configs[n], log_space) for n, p in params.items()])
        if len(configs) == 0:
            return np.zeros((0, self.dim))
        return np.stack([self.to_unit(c, log_space) for c in configs])

    def columns_to_unit(self, columns: np.ndarray, log_space: bool = True) -> np.ndarray:
        """Map a raw ``[n, d]`` array to the unit cube.

        Its columns are in [`names`][metapbt.population.space.SearchSpace.names] order.
        """
        params = self._numeric("the unit cube")
        columns = np.asarray(columns, dtype=np.float64)
        return (
            np.stack(
                [p.to_unit(columns[:, i], log_space) for i, p in enumerate(params.values())],
                axis=-1,
            )
            if columns.size
            else np.zeros((columns.shape[0], self.dim))
        )

    def model_columns(
        self, columns: np.ndarray, log_space: bool = True, clip: bool = False
    ) -> np.ndarray:
        """Encoded ``[n, d]`` columns as a surrogate's inputs: categories, then the unit cube.

        A categorical's column (its choice's index, as
        [`encode`][metapbt.population.space.SearchSpace.encode] writes it) is kept as it is, before
        the numeric parameters mapped to the unit cube (``clip``: into [0, 1]). The layout of
        PB2-Mix's mixture kernel; without categoricals,
        [`columns_to_unit`][metapbt.population.space.SearchSpace.columns_to_unit].
        """
        columns = np.asarray(columns, dtype=np.float64).reshape(-1, self.dim)
        cats = [i for i, n in enumerate(self.names) if n in self.categorical_names]
        numeric = [i for i in range(self.dim) if i not in cats]
        unit = self.numeric().columns_to_unit(columns[:, numeric], log_space)
        if clip:
            unit = np.clip(unit, 0.0, 1.0)
        return np.column_stack([columns[:, cats], unit]) if cats else unit

    def from_unit(self, unit: np.ndarray, log_space: bool = True) -> Config:
        """Map a ``[d]`` unit-cube vector to a config (clipped, ints rounded)."""
        params = self._numeric("the unit cube")
        unit = np.asarray(unit, dtype=np.float64)
        if unit.shape != (self.dim,):
            raise ConfigError(f"expected a unit vector of shape ({self.dim},), got {unit.shape}")
        return {
            name: p.cast(p.from_unit(u, log_space))
            for (name, p), u in zip(params.items(), unit, strict=True)
        }

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """A JSON-friendly description of every parameter, by name.

        ``{"type", "low", "high", "log"}`` for numbers, ``{"type": "categorical", "choices"}``.
        """
        return {
            name: {"type": p.kind, "choices": list(p.choices)}
            if isinstance(p, Categorical)
            else {"type": p.kind, "low": p.low, "high": p.high, "log": p.log}
            for name, p in self._params.items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> SearchSpace:
        """Inverse of [`to_dict`][metapbt.population.space.SearchSpace.to_dict].

        Raises:
            ConfigError: On an unknown type or malformed entry.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"a search space is a table of parameters, got {data!r:.80}")
        params: dict[str, Param] = {}
        for name, spec in data.items():
            if not isinstance(spec, Mapping):
                raise ConfigError(
                    f"{name}: a parameter is a table (type, low, high...), got {spec!r:.80}"
                )
            kind = spec.get("type", "float")
            if not isinstance(spec.get("log", False), bool):
                raise ConfigError(f"{name}: 'log' must be true or false, got {spec['log']!r}")
            if kind == "categorical":
                if not isinstance(spec.get("choices"), list):
                    raise ConfigError(f"{name}: a categorical needs a list of 'choices'")
                params[name] = Categorical(tuple(spec["choices"]))
                continue
            if not isinstance(kind, str) or kind not in _KINDS:
                raise ConfigError(
                    f"{name}: unknown parameter type {kind!r}; use 'float', 'int' or 'categorical'"
                )
            try:
                params[name] = _KINDS[kind](spec["low"], spec["high"], spec.get("log", False))
            except KeyError as err:
                raise ConfigError(f"{name}: missing field {err.args[0]!r}") from None
        return cls(params)


def default_space() -> SearchSpace:
    """The paper's PPO search space: ``lr`` log in [1e-5, 1e-3], ``lambda``, ``clip``."""
    return SearchSpace(
        {
            "lr": Float(1e-5, 1e-3, log=True),
            "lambda": Float(0.9, 0.99),
            "clip": Float(0.1, 0.5),
        }
    )

"""Property-based tests' settings: modest example counts in the default job, ten times more in
the slow job (``pytest -m slow``), and strategies shared by the property modules."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from metapbt.population.space import MAX_EXACT_INT, Categorical, Float, Int, SearchSpace

_COMMON = {
    "deadline": None,  # JAX and GP fits vary in time; nothing here is about speed
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "database": None,  # nothing written into the repository
}


def property_test(*strategies: Any, examples: int, **kw: Any) -> Callable[..., tuple[Any, Any]]:
    """Two tests of one property: ``examples`` derandomized examples (default job, the same
    every run) and ``10 * examples`` random ones (slow job)."""

    def wrap(fn: Callable[..., None]) -> tuple[Any, Any]:
        fast = settings(max_examples=examples, derandomize=True, **_COMMON)(
            given(*strategies, **kw)(fn)
        )
        many = settings(max_examples=10 * examples, **_COMMON)(given(*strategies, **kw)(fn))
        return fast, pytest.mark.slow(many)

    return wrap


FLOAT_MAX = 1.7976931348623157e308
finite = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def numeric_params(draw: st.DrawFn) -> Float:
    """A Float or Int, bounds anywhere a float or exact integer reaches (the limits included)."""
    if draw(st.booleans()):
        log = draw(st.booleans())
        low = draw(st.integers(1 if log else -MAX_EXACT_INT, MAX_EXACT_INT - 1))
        high = draw(st.integers(low + 1, MAX_EXACT_INT))
        # Near 2**53 neighbouring integers have equal logarithms as floats: refused, as above.
        assume(not log or math.log(low) < math.log(high))
        return Int(low, high, log)
    if draw(st.booleans()):  # log scale: positive bounds, down to the smallest subnormal
        low = draw(st.floats(min_value=5e-324, max_value=FLOAT_MAX, exclude_max=True))
        high = draw(st.floats(min_value=low, max_value=FLOAT_MAX, exclude_min=True))
        assume(math.log(low) < math.log(high))  # narrower is refused (a property of its own)
        return Float(low, high, log=True)
    low = draw(st.floats(min_value=-FLOAT_MAX, max_value=FLOAT_MAX, exclude_max=True))
    high = draw(st.floats(min_value=low, max_value=FLOAT_MAX, exclude_min=True))
    assume(math.isfinite(high - low))  # wider ranges are refused (a property of its own)
    return Float(low, high)


categoricals = st.one_of(
    st.lists(st.text(max_size=6), min_size=2, max_size=5, unique=True),
    st.lists(st.integers(-10, 10), min_size=2, max_size=5, unique=True),
    st.lists(finite, min_size=2, max_size=5, unique=True),
    st.just([True, False]),
).map(Categorical)

_NAMES = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=6)
_RESERVED = {"step", "member", "reward", "clone_source"}


def spaces(categorical: bool = True, max_dim: int = 4) -> st.SearchStrategy[SearchSpace]:
    """Search spaces of 1..``max_dim`` parameters (with categoricals if ``categorical``)."""
    params = st.one_of(numeric_params(), categoricals) if categorical else numeric_params()
    names = _NAMES.filter(lambda n: n not in _RESERVED)
    return st.dictionaries(names, params, min_size=1, max_size=max_dim).map(SearchSpace)


rewards = st.one_of(
    st.none(),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1.0]),  # failures, infinities, ties
    st.floats(-1e6, 1e6),
)

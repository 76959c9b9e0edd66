import pytest

from metapbt import envs
from metapbt.envs.grids import GRID_MULTIPLIERS, context_grid, expand_contexts
from metapbt.errors import ConfigError


def test_pole_length_grid_is_the_references():
    grid = context_grid("cart_pole", "length")
    assert len(grid) == 22 == len(GRID_MULTIPLIERS)
    assert grid[0] == "length=0.05" and grid[9] == "length=0.5" and grid[-1] == "length=1.1"
    _, params = envs.make("cart_pole", grid[-1])
    assert params.length == pytest.approx(1.1)
    assert params.polemass_length == pytest.approx(0.1 * 1.1)  # derived field follows


def test_expand_contexts_forms_and_errors():
    assert expand_contexts("pendulum", "planets")[0] == "uranus"
    assert expand_contexts("cart_pole", " earth ; length=0.7 ") == ["earth", "length=0.7"]
    assert len(expand_contexts("mountain_car", "grid:gravity")) == 22
    with pytest.raises(ConfigError, match="no context feature"):
        expand_contexts("cart_pole", "grid:tau")
    with pytest.raises(ConfigError, match="no contexts"):
        expand_contexts("cart_pole", " ; ")
    with pytest.raises(ConfigError):
        expand_contexts("cart_pole", "earth; mars")

import numpy as np
import pytest

from metapbt import ConfigError, Float, Int, SearchSpace, default_space


def test_bounds_are_validated_with_clear_messages():
    with pytest.raises(ConfigError, match="low < high"):
        Float(1.0, 0.5)
    with pytest.raises(ConfigError, match="positive bounds"):
        Float(0.0, 1.0, log=True)
    with pytest.raises(ConfigError, match="finite"):
        Float(0.0, float("inf"))
    with pytest.raises(ConfigError, match="must be an int"):
        Int(1.5, 4)
    with pytest.raises(ConfigError, match="at least one"):
        SearchSpace({})


def test_unit_cube_round_trip_linear_and_log():
    space = SearchSpace({"lr": Float(1e-5, 1e-3, log=True), "clip": Float(0.1, 0.5)})
    config = {"lr": 1e-4, "clip": 0.3}
    unit = space.to_unit(config)
    np.testing.assert_allclose(unit, [0.5, 0.5])
    assert space.from_unit(unit) == pytest.approx(config)
    # Linear mapping of a log parameter (stock PB2) puts 1e-4 near the bottom of the range.
    linear = space.to_unit(config, log_space=False)
    np.testing.assert_allclose(linear[0], (1e-4 - 1e-5) / (1e-3 - 1e-5))
    assert space.from_unit(linear, log_space=False) == pytest.approx(config)


def test_int_parameters_round_and_stay_in_bounds():
    space = SearchSpace({"epochs": Int(1, 10), "batch": Int(16, 512, log=True)})
    rng = np.random.default_rng(0)
    for _ in range(200):
        config = space.sample(rng)
        assert all(isinstance(v, int) for v in config.values())
        assert 1 <= config["epochs"] <= 10 and 16 <= config["batch"] <= 512
    assert space.from_unit(np.array([0.52, 1.0])) == {"epochs": 6, "batch": 512}
    assert space.clip({"epochs": 11.7, "batch": 3}) == {"epochs": 10, "batch": 16}


def test_log_sampling_is_log_uniform():
    space = SearchSpace({"lr": Float(1e-5, 1e-3, log=True)})
    rng = np.random.default_rng(1)
    values = np.array([space.sample(rng)["lr"] for _ in range(4000)])
    below = np.mean(values < 1e-4)  # the log midpoint
    assert 0.46 < below < 0.54


def test_validate_rejects_missing_extra_and_out_of_bounds():
    space = default_space()
    good = {"lr": 1e-4, "lambda": 0.95, "clip": 0.2}
    assert space.validate(good) == good
    with pytest.raises(ConfigError, match="missing"):
        space.validate({"lr": 1e-4})
    with pytest.raises(ConfigError, match="outside its bounds"):
        space.validate({**good, "clip": 0.9})
    with pytest.raises(ConfigError, match="finite"):
        space.validate({**good, "lr": float("nan")})


def test_dict_round_trip_and_equality():
    space = SearchSpace({"lr": Float(1e-5, 1e-3, log=True), "n": Int(1, 8)})
    assert SearchSpace.from_dict(space.to_dict()) == space
    assert space != default_space()
    with pytest.raises(ConfigError, match="unknown parameter type"):
        SearchSpace.from_dict({"x": {"type": "cat", "low": 0, "high": 1}})

import pytest

from metapbt import ConfigError
from metapbt.runs.config import Protocol, RunConfig


def test_defaults_are_the_reference_protocol_and_the_config_is_frozen():
    config = RunConfig()
    assert (config.population, config.budget, config.interval, config.quantile) == (
        4,
        600_000,
        40_000,
        0.25,
    )
    assert config.rounds == 15 and config.task == "cart_pole earth"
    assert Protocol().model_dump().items() <= config.model_dump().items()
    with pytest.raises(ValueError, match="frozen"):
        config.budget = 1


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"interval": 3000, "budget": 6000}, r"multiple of the 'classic' preset's batch size 2000"),
        ({"preset": "paper", "interval": 10_000, "budget": 20_000}, r"'paper'.*20000"),
        ({"budget": 50_000}, "budget 50000 must be a multiple of interval 40000"),
        ({"population": 0}, "population"),
        ({"quantile": 0.7}, "quantile"),
        ({"preset": "huge"}, "unknown preset 'huge'; known: box2d, brax-fast, brax-fast-norm"),
        ({"env": "mars_rover"}, "unknown env 'mars_rover'"),
        ({"method": "pb3"}, "unknown method 'pb3'"),
        ({"context": "mars"}, "neither a planet"),
        ({"colour": 1}, "colour"),
    ],
)
def test_invalid_settings_are_config_errors_naming_the_field(fields, match):
    with pytest.raises(ConfigError, match=match):
        RunConfig(**fields)

import pytest

from metapbt import ConfigError, envs
from metapbt.engine import presets
from metapbt.runs.config import RunConfig, TrainingProtocol
from metapbt.runs.resolve import resolve


def test_defaults_are_the_reference_protocol_and_the_config_is_frozen():
    config = RunConfig()
    assert (config.population, config.budget, config.interval, config.quantile) == (
        4,
        600_000,
        40_000,
        0.25,
    )
    assert config.rounds == 15 and config.task == "cart_pole earth"
    assert TrainingProtocol().model_dump().items() <= config.model_dump().items()
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
        ({"agent": "sac"}, "agent: unknown agent 'sac'; known: dqn, ppo"),
        ({"agent": "dqn", "preset": "box2d"}, "unknown preset 'box2d' for the dqn agent; known"),
        (
            {"agent": "dqn", "space": {"clip": {"type": "float", "low": 0.1, "high": 0.3}}},
            "dqn agent cannot tune",
        ),
        ({"agent": "dqn", "interval": 10_005, "budget": 20_010}, "batch size 10 "),
    ],
)
def test_invalid_settings_are_config_errors_naming_the_field(fields, match):
    with pytest.raises(ConfigError, match=match):
        RunConfig(**fields)


PAIRS = [(e, p) for e in envs.names() for p in presets.PRESETS.names()]


@pytest.mark.parametrize(("env", "preset"), PAIRS)
def test_every_env_and_preset_is_a_run_with_the_presets_defaults(env, preset, caplog):
    presets.warn_unsuited.cache_clear()
    config = RunConfig(env=env, preset=preset)
    dumped = config.model_dump()
    assert (dumped["budget"], dumped["interval"]) == (
        presets.use(preset).budget,
        presets.use(preset).interval,
    )
    assert isinstance(dumped["budget"], int) and isinstance(dumped["interval"], int)
    assert config.interval % presets.make(preset, env=env).batch_size == 0
    assert resolve(config).agent_config == presets.make(preset, env=env)
    family = envs.spec(env).family
    warned = [r.getMessage() for r in caplog.records if "is not meant for" in r.getMessage()]
    if family in presets.use(preset).families:
        assert not warned
    else:  # it trains as asked, and says which presets suit the env
        assert len(warned) == 1 and f"the '{presets.RECOMMENDED[family]}' preset" in warned[0]


def test_without_a_preset_a_run_takes_its_envs():
    assert RunConfig().preset == "classic"
    assert RunConfig(env="lunar_lander").preset == "box2d"
    hopper = RunConfig(env="hopper")
    assert (hopper.preset, hopper.budget, hopper.interval) == ("brax-fast", 1_024_000, 102_400)
    assert RunConfig(env="hopper", preset="brax-paper").preset == "brax-paper"


def test_budget_and_interval_come_from_the_preset_only_where_not_given():
    lander = RunConfig(env="lunar_lander", preset="box2d")
    assert (lander.budget, lander.interval, lander.rounds) == (520_000, 52_000, 10)
    assert not {"budget", "interval"} & lander.model_fields_set  # given: what the user gave
    short = RunConfig(env="lunar_lander", preset="box2d", budget=104_000)
    assert (short.budget, short.interval) == (104_000, 52_000)
    assert TrainingProtocol(preset="brax-paper").model_dump()["budget"] == 3_000_000
    with pytest.raises(ConfigError, match=r"interval 52000 \(the 'box2d' preset's default\)"):
        RunConfig(env="lunar_lander", preset="box2d", budget=100_000)
    with pytest.raises(ConfigError, match=r"budget 600000 \(the 'classic' preset's default\) must"):
        RunConfig(interval=80_000)


def test_the_agent_picks_its_presets_defaults_and_space_and_is_part_of_the_run():
    from metapbt.engine.dqn_presets import DQNConfig
    from metapbt.runs.config import with_legacy
    from metapbt.runs.resolve import batch_key

    config = RunConfig(agent="dqn")
    assert (config.preset, config.budget, config.interval) == ("classic", 100_000, 10_000)
    assert config.search_space.names == ["lr", "tau", "gamma", "eps_final"]
    assert config.model_dump()["agent"] == "dqn" and config.protocol["agent"] == "dqn"
    assert isinstance(resolve(config).agent_config, DQNConfig)
    tuned = RunConfig(
        agent="dqn",
        space={
            "lr": {"type": "float", "low": 1e-4, "high": 1e-3},
            "updates": {"type": "int", "low": 1, "high": 8},
        },
    )
    assert resolve(tuned).agent_config.max_updates == 8
    ppo = RunConfig(preset="classic", budget=100_000, interval=10_000)
    assert batch_key(ppo) != batch_key(RunConfig(agent="dqn"))
    assert with_legacy({})["agent"] == "ppo"  # runs recorded before agents were PPO's

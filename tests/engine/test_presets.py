"""What each preset is for: its environment families and a run's default budget and interval."""

import pytest

from metapbt import envs
from metapbt.engine import presets
from metapbt.errors import ConfigError, UnknownNameError


def test_every_preset_defaults_to_whole_batches_for_every_env_it_is_meant_for():
    for name in presets.PRESETS.names():
        use = presets.use(name)
        assert use.budget % use.interval == 0 and use.budget // use.interval >= 10, name
        meant = [e for e in envs.names() if envs.spec(e).family in use.families]
        assert meant, name
        for env in meant:
            assert use.interval % presets.make(name, env=env).batch_size == 0, (name, env)


def test_the_classic_control_presets_keep_the_reference_protocol():
    for name in ("classic", "fast", "paper", "paper-1k"):
        assert (presets.use(name).budget, presets.use(name).interval) == (600_000, 40_000)
    assert (presets.use("box2d").budget, presets.use("box2d").interval) == (520_000, 52_000)
    assert presets.use("brax-paper").budget == 3_000_000


def test_every_env_has_presets_and_the_suggested_one_comes_first():
    for env in envs.names():
        meant = presets.for_env(env)
        assert meant[0] == presets.RECOMMENDED[envs.spec(env).family], env
        assert sorted(meant) == [
            p for p in presets.PRESETS.names() if envs.spec(env).family in presets.use(p).families
        ]
    assert presets.for_env("hopper") == ["brax-fast", "brax-fast-norm", "brax-paper"]
    assert presets.for_env("lunar_lander")[0] == "box2d"


@pytest.mark.parametrize(
    ("preset", "env", "match"),
    [
        (
            "classic",
            "hopper",
            "'classic' preset is not meant for hopper (a Brax robot): the 'brax-fast' "
            "preset (or brax-fast-norm, brax-paper) is",
        ),
        ("brax-paper", "lunar_lander", "lunar_lander (a Box2D env): the 'box2d' preset"),
        ("brax-fast", "cart_pole", "the 'classic' preset (or box2d, fast, paper"),
    ],
)
def test_a_preset_not_meant_for_an_env_says_which_are_and_still_builds(preset, env, match):
    assert match in presets.unsuited(preset, env)
    assert presets.make(preset, env=env) == presets.make(preset)  # every pair trains
    assert presets.unsuited(presets.for_env(env)[0], env) is None


def test_unknown_names_list_the_known_ones():
    with pytest.raises(UnknownNameError, match="known: box2d, brax-fast"):
        presets.use("huge")
    with pytest.raises(UnknownNameError, match="unknown env 'mars_rover'"):
        presets.unsuited("classic", "mars_rover")
    with pytest.raises(ConfigError, match="multiple of its default interval"):
        presets.PresetUse(100_000, 30_000, (presets.BRAX,))

"""Env sources: gymnax:, gymnasium:, brax:, module:attr, register() and the entry-point group."""

from __future__ import annotations

import multiprocessing
import sys
import textwrap

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metapbt import envs
from metapbt.envs import registry
from metapbt.envs.adapters import GymnasiumSpec, GymnaxApiSpec
from metapbt.errors import ConfigError, UnknownNameError

LINE = "tests.envs.custom_envs:LINE"

# MNISTBandit downloads MNIST when made: this machine (and CI) has no network.
OFFLINE = [e for e in gymnax.registered_envs if e != "MNISTBandit-bsuite"]


@pytest.mark.parametrize("name", OFFLINE)
def test_every_gymnax_env_is_a_source_that_keeps_the_contract(name):
    spec = envs.spec(f"gymnax:{name}")
    assert isinstance(spec, GymnaxApiSpec) and spec.trainer == "jax"
    env, params = envs.make(f"gymnax:{name}")
    obs, _ = env.reset(jax.random.PRNGKey(0), params)
    assert obs.dtype == jnp.float32
    assert obs.ndim == 1 or obs.shape[-1] <= 10  # a vector or an image [H, W, C]


def test_a_gymnax_env_that_downloads_is_a_named_error_offline():
    with pytest.raises(ConfigError, match="MNISTBandit"):
        envs.spec("gymnax:MNISTBandit-bsuite")


def test_gymnax_params_fields_are_the_context_features_and_change_the_dynamics():
    spec = envs.spec("gymnax:CartPole-v1")
    assert spec.features["length"].default == 0.5
    assert "max_steps_in_episode" not in spec.features  # structural, not a context
    ctx = envs.resolve_context("gymnax:CartPole-v1", "length=0.7,masscart=2")
    _, params = envs.make("gymnax:CartPole-v1", ctx)
    assert (params.length, params.masscart) == (0.7, 2.0)
    assert envs.resolve_context("gymnax:CartPole-v1", "neptune")["gravity"] == pytest.approx(
        9.8 * 11.0 / 9.81
    )

    def fall(context):
        env, p = envs.make("gymnax:CartPole-v1", context)
        obs, state = env.reset(jax.random.PRNGKey(0), p)
        for _ in range(5):
            obs, state, *_ = env.step(jax.random.PRNGKey(1), state, 1, p)
        return np.asarray(obs)

    assert not np.allclose(fall("gravity=9.8"), fall("gravity=30"))


def test_integer_params_stay_integers_and_unbounded_features_take_any_finite_value():
    spec = envs.spec("gymnax:Asterix-MinAtar")
    assert spec.features["ramp_interval"].integer
    _, params = envs.make("gymnax:Asterix-MinAtar", "ramp_interval=50")
    assert params.ramp_interval == 50 and isinstance(params.ramp_interval, int)
    with pytest.raises(ConfigError, match="whole number"):
        envs.resolve_context("gymnax:Asterix-MinAtar", "ramp_interval=2.5")
    assert envs.resolve_context("gymnax:CartPole-v1", "length=1000")["length"] == 1000
    with pytest.raises(ConfigError, match="not a finite number"):
        envs.resolve_context("gymnax:CartPole-v1", "length=inf")
    with pytest.raises(ConfigError, match="no gravity feature"):
        envs.resolve_context("gymnax:Breakout-MinAtar", "neptune")
    assert envs.resolve_context("gymnax:Breakout-MinAtar", "earth") == {}  # the defaults


def test_unknown_sources_and_features_name_what_exists():
    with pytest.raises(UnknownNameError, match="gymnax has: CartPole-v1"):
        envs.spec("gymnax:Nope-v0")
    with pytest.raises(UnknownNameError, match="unknown gymnasium env"):
        envs.spec("gymnasium:Nope-v0")
    with pytest.raises(UnknownNameError, match="or a source: gymnax:<id>"):
        envs.spec("mars_rover")
    with pytest.raises(ConfigError, match="no context features"):
        envs.resolve_context("gymnax:CartPole-v1", "mass=3")
    assert "gymnax:Nope-v0" not in envs.ENVS and "gymnax:CartPole-v1" in envs.ENVS


def test_gymnasium_sources_take_constructor_keywords_as_contexts():
    spec = envs.spec("gymnasium:Pendulum-v1")
    assert isinstance(spec, GymnasiumSpec) and spec.trainer == "host"
    assert spec.gravity_features == ("g",) and spec.max_episode_steps == 200
    env = envs.make_host("gymnasium:Pendulum-v1", "g=3.5")
    assert env.unwrapped.g == 3.5
    env.close()
    assert envs.make_host("gymnasium:Pendulum-v1", "neptune").unwrapped.g == pytest.approx(
        10 * 11.0 / 9.81
    )


def test_brax_sources_by_name():
    spec = envs.spec("brax:inverted_pendulum")
    assert spec.family == "brax" and spec.brax_name == "inverted_pendulum"
    with pytest.raises(UnknownNameError, match="brax has"):
        envs.spec("brax:unicycle")


@pytest.mark.parametrize("attr", ["LINE", "make_line", "make_line_and_params"])
def test_a_users_module_attr_gives_an_env_with_its_context_bounds(attr):
    spec = envs.spec(f"tests.envs.custom_envs:{attr}")
    assert spec.features["target"].low == -1.0 and spec.features["speed"].high == 0.5
    expected = -0.5 if attr == "make_line_and_params" else 0.5
    assert spec.features["target"].default == expected
    with pytest.raises(ConfigError, match="outside"):
        envs.resolve_context(f"tests.envs.custom_envs:{attr}", "target=2")


@pytest.mark.parametrize(
    ("attr", "match"),
    [
        ("FIVE_VALUES", "step returned 5 values; the gymnax API"),
        ("WRONG_SHAPE", r"observations have shape \(2,\), its observation space declares \(3,\)"),
        ("NO_LIMIT", "has no time limit"),
        ("STRING_PARAMS", "params must be a dataclass"),
        ("PYTHON_BRANCH", "fails when traced: Attempted boolean conversion"),
        ("NOT_AN_ENV", "is a int: expected a gymnax-API environment"),
        ("needs_an_argument", "must take no arguments"),
        ("MISSING", "has no attribute 'MISSING'"),
    ],
)
def test_an_env_that_breaks_the_contract_fails_before_training_naming_it(attr, match):
    with pytest.raises(ConfigError, match=match) as err:
        envs.spec(f"tests.envs.custom_envs:{attr}")
    assert f"tests.envs.custom_envs:{attr}" in str(err.value)


def test_an_unimportable_module_is_named():
    with pytest.raises(ConfigError, match="cannot import module 'no_such_module_x'"):
        envs.spec("no_such_module_x:ENV")


def test_register_from_python_then_use_the_id_everywhere():
    from tests.envs.custom_envs import Line

    spec = envs.register("line_registered", Line(), bounds={"target": (-0.9, 0.9)}, solved=35.0)
    try:
        assert envs.spec("line_registered") is spec and spec.solved == 35.0
        assert spec.features["target"].high == 0.9  # the given bounds beat the attribute's
        assert "line_registered" in envs.names()
        with pytest.raises(ConfigError, match="already registered"):
            envs.register("line_registered", Line())
        with pytest.raises(ConfigError, match="not a source"):
            envs.register("gymnax:Line", Line())
        with pytest.raises(ConfigError, match="not numeric context features"):
            envs.register("line_bad_bounds", Line(), bounds={"colour": (0, 1)})
    finally:
        envs.ENVS._factories.pop("line_registered", None)
        envs.ENVS._built.pop("line_registered", None)


@pytest.fixture
def installed_package(tmp_path, monkeypatch):
    """A package installed on ``sys.path`` that lists an env in the entry-point group."""
    (tmp_path / "linepkg.py").write_text("from tests.envs.custom_envs import LINE as ENV\n")
    dist = tmp_path / "linepkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: linepkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[metapbt.envs]\nline_ep = linepkg:ENV\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._entry_points.cache_clear()
    yield tmp_path
    registry._entry_points.cache_clear()
    envs.ENVS._built.pop("line_ep", None)


def _child_features(path: str, queue) -> None:
    sys.path.insert(0, path)
    from metapbt import envs as child_envs

    queue.put(sorted(child_envs.spec("line_ep").features))


def test_an_entry_point_env_is_seen_here_and_by_a_spawned_child(installed_package):
    assert "line_ep" in envs.names()
    assert sorted(envs.spec("line_ep").features) == ["speed", "target"]
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_features, args=(str(installed_package), queue))
    child.start()
    child.join(120)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == ["speed", "target"]


def test_a_module_in_the_working_directory_is_found(tmp_path, monkeypatch):
    (tmp_path / "cwd_line_env.py").write_text(
        textwrap.dedent(
            """
            from tests.envs.custom_envs import Line
            ENV = Line()
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert envs.spec("cwd_line_env:ENV").features["target"].default == 0.5


def test_a_users_gymnasium_class_needs_a_time_limit_and_takes_its_keywords():
    pendulum = "gymnasium.envs.classic_control.pendulum:PendulumEnv"
    with pytest.raises(ConfigError, match="has no time limit"):
        envs.spec(pendulum)
    from gymnasium.envs.classic_control.pendulum import PendulumEnv

    spec = envs.register("my_pendulum", PendulumEnv, max_episode_steps=50)
    try:
        assert spec.trainer == "host" and spec.features["g"].default == 10.0
        env = envs.make_host("my_pendulum", "g=4")
        from gymnasium.wrappers import TimeLimit

        assert env.unwrapped.g == 4.0
        assert isinstance(env, TimeLimit) and env._max_episode_steps == 50
    finally:
        envs.ENVS._factories.pop("my_pendulum", None)
        envs.ENVS._built.pop("my_pendulum", None)


def test_a_gymnasium_env_missing_a_dependency_is_a_named_error():
    with pytest.raises(ConfigError, match="NEEDS_MISSING' cannot be made here: No module"):
        envs.spec("tests.envs.custom_envs:NEEDS_MISSING")


def test_a_factory_builds_its_env_once_however_many_members_make_it():
    from tests.envs.custom_envs import Line

    calls = []

    def factory() -> Line:
        calls.append(1)
        return Line()

    try:
        spec = envs.register("line_counted", factory)
        built = len(calls)
        first, _ = spec.make({"target": 0.1})
        second, params = spec.make({"target": -0.2})
        assert len(calls) == max(built, 1) and float(params.target) == -0.2
        assert first.unwrapped is second.unwrapped  # one built env under both wrappers
    finally:
        envs.ENVS._factories.pop("line_counted", None)
        envs.ENVS._built.pop("line_counted", None)

"""Contextual LunarLander against gymnasium's LunarLander-v3."""

import pickle

import gymnasium
import numpy as np
import pytest
from gymnasium.envs.box2d import lunar_lander as gym_module

from metapbt import ConfigError, envs

# Fire the main engine in bursts (a falling, tilting lander that reaches the ground).
ACTIONS = [
    2 if t % 4 == 0 else int(a) for t, a in enumerate(np.random.default_rng(0).integers(0, 4, 400))
]


def rollout(env, actions=ACTIONS, seed=0):
    """Observations, rewards and end flags of ``actions`` from ``reset(seed)`` until the end."""
    obs, _ = env.reset(seed=seed)
    out = [(obs, 0.0, False, False)]
    for action in actions:
        obs, reward, term, trunc, _ = env.step(action)
        out.append((obs, reward, term, trunc))
        if term or trunc:
            break
    return out


def leg_extents(env):
    """(half-width, half-height) of each leg's box, in metres, from its Box2D fixture."""
    extents = []
    for leg in env.unwrapped.legs:
        vertices = np.array(leg.fixtures[0].shape.vertices)
        extents.append(tuple(vertices.max(axis=0)))
    return extents


def test_the_default_context_is_lunar_lander_v3_step_by_step():
    ours = rollout(envs.make_host("lunar_lander"))
    ref = rollout(gymnasium.make("LunarLander-v3"))
    assert len(ours) == len(ref) > 50
    for t, (a, b) in enumerate(zip(ours, ref, strict=True)):
        np.testing.assert_array_equal(a[0], b[0], err_msg=f"step {t}")
        assert a[1:] == b[1:], t


def test_leg_geometry_follows_the_context_and_gymnasium_is_left_untouched():
    default = envs.make_host("lunar_lander")
    tall = envs.make_host("lunar_lander", "leg_height=16,leg_width=3")
    default.reset(seed=0)
    tall.reset(seed=0)
    assert leg_extents(default) == [pytest.approx((2 / 30, 8 / 30))] * 2
    assert leg_extents(tall) == [pytest.approx((3 / 30, 16 / 30))] * 2
    assert (gym_module.LEG_H, gym_module.LEG_W) == (8, 2)
    plain = gymnasium.make("LunarLander-v3")
    plain.reset(seed=0)
    assert leg_extents(plain) == [pytest.approx((2 / 30, 8 / 30))] * 2


def test_longer_legs_change_the_landing():
    # Same seed, engines off: the lander falls the same way, its legs differ.
    default = rollout(envs.make_host("lunar_lander"), [0] * 400)
    tall = rollout(envs.make_host("lunar_lander", "leg_height=16"), [0] * 400)
    # Heavier legs already move the lander in reset's first physics step.
    assert not np.allclose(default[0][0], tall[0][0])
    assert not np.allclose(default[-1][0], tall[-1][0], atol=1e-2)

    def first_contact(traj):
        return next(t for t, (obs, *_) in enumerate(traj) if obs[6] or obs[7])

    # Longer legs touch the ground earlier, while the body is higher.
    assert first_contact(tall) < first_contact(default)
    assert tall[first_contact(tall)][0][1] > default[first_contact(default)][0][1] + 0.03


def test_environments_of_different_contexts_interleave_without_crosstalk():
    alone = rollout(envs.make_host("lunar_lander", "leg_height=16,main_engine_power=20"))
    a = envs.make_host("lunar_lander", "leg_height=16,main_engine_power=20")
    b = envs.make_host("lunar_lander")
    a.reset(seed=0)
    b.reset(seed=0)
    for t, action in enumerate(ACTIONS[: len(alone) - 1]):
        obs, *_ = a.step(action)
        b.step(action)
        np.testing.assert_array_equal(obs, alone[t + 1][0], err_msg=f"step {t}")


def test_gravity_and_engine_power_change_the_dynamics():
    def velocity_after(context, action, steps=30):
        env = envs.make_host("lunar_lander", context)
        env.reset(seed=0)
        for _ in range(steps):
            obs, *_ = env.step(action)
        return obs[3]  # vertical velocity

    assert envs.make_host("lunar_lander", "gravity=-5").unwrapped.world.gravity[1] == -5
    # Weaker gravity falls slower; a stronger main engine brakes harder.
    assert velocity_after("gravity=-5", 0) > velocity_after(None, 0) + 0.3
    assert velocity_after("main_engine_power=20", 2) > velocity_after(None, 2) + 0.3
    assert velocity_after("side_engine_power=2", 1) != velocity_after(None, 1)


def test_planets_scale_gravity_inside_gymnasiums_bounds():
    gravities = [envs.resolve_context("lunar_lander", p)["gravity"] for p in envs.PLANETS]
    assert gravities == pytest.approx([-10 * g / 9.81 for g in envs.PLANETS.values()])
    env = envs.make_host("lunar_lander", "neptune")
    assert env.unwrapped.world.gravity[1] == pytest.approx(-10 * 11.0 / 9.81)


@pytest.mark.parametrize(
    ("context", "match"),
    [
        ("leg_length=9", "no context features"),
        ("gravity=-12", "outside"),
        ("gravity=0", "outside"),
        ("leg_height=0", "outside"),
        ("main_engine_power=nan", "not a finite number"),
    ],
)
def test_unknown_or_out_of_bounds_features_are_config_errors(context, match):
    with pytest.raises(ConfigError, match=match):
        envs.make_host("lunar_lander", context)


def test_registry_tells_host_from_jax_environments():
    assert "lunar_lander" in envs.names()
    assert envs.spec("lunar_lander").trainer == "host"
    assert {envs.spec(name).trainer for name in envs.names() if name != "lunar_lander"} == {"jax"}
    with pytest.raises(ConfigError, match="make_host"):
        envs.make("lunar_lander")
    with pytest.raises(ConfigError, match=r"envs\.make\(\)"):
        envs.make_host("cart_pole")


def test_an_environment_pickles_with_its_context():
    env = envs.make_host("lunar_lander", "leg_height=12")
    copy = pickle.loads(pickle.dumps(env))
    assert copy.unwrapped.context == env.unwrapped.context
    assert rollout(copy)[-1][0].tolist() == rollout(env)[-1][0].tolist()

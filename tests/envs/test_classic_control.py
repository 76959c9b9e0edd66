"""Each environment against its gymnasium reference under the same physical parameters."""

import gymnasium
import jax
import numpy as np
import pytest

from metapbt import ConfigError, UnknownNameError, envs

STATE_FIELDS = {
    "cart_pole": ("x", "x_dot", "theta", "theta_dot"),
    "mountain_car": ("position", "velocity"),
    "pendulum": ("theta", "theta_dot"),
    "acrobot": ("joint_angle1", "joint_angle2", "velocity_1", "velocity_2"),
}


def reference(env_id, context):
    """A gymnasium env with the context's physical parameters (and derived fields) set."""
    spec = envs.spec(env_id)
    if env_id == "pendulum":
        ref = gymnasium.make("Pendulum-v1", g=context["g"]).unwrapped
        ref.m, ref.l = context["m"], context["l"]
        return ref
    ref = gymnasium.make(spec.gymnasium_id).unwrapped
    for name, value in context.items():
        setattr(ref, name.upper() if env_id == "acrobot" else name, value)
    if env_id == "cart_pole":
        ref.total_mass = ref.masspole + ref.masscart
        ref.polemass_length = ref.masspole * ref.length
    return ref


def actions(env_id, rng, n):
    if env_id == "pendulum":
        return [np.array([a], np.float32) for a in rng.uniform(-2, 2, n)]
    return list(rng.integers(0, 3 if env_id != "cart_pole" else 2, n))


@pytest.mark.parametrize("env_id", sorted(STATE_FIELDS))
@pytest.mark.parametrize("context", [None, "neptune", "uranus"])
def test_trajectory_matches_gymnasium(env_id, context):
    env, params = envs.make(env_id, context)
    ctx = envs.resolve_context(env_id, context)
    ref = reference(env_id, ctx)
    ref.reset(seed=0)
    key = jax.random.key(0)
    obs, state = env.reset(key, params)
    ref.state = np.array([float(getattr(state, f)) for f in STATE_FIELDS[env_id]], np.float64)
    step = jax.jit(env.step)
    for t, action in enumerate(actions(env_id, np.random.default_rng(1), 60)):
        obs, state, reward, terminated, _, _ = step(key, state, action, params)
        ref_obs, ref_reward, ref_term, _, _ = ref.step(action)
        if ref_term:
            break
        np.testing.assert_allclose(obs, ref_obs, rtol=2e-4, atol=2e-4, err_msg=f"step {t}")
        assert float(reward) == pytest.approx(float(ref_reward), rel=1e-3, abs=1e-3)
        assert not bool(terminated)


@pytest.mark.parametrize("env_id", sorted(STATE_FIELDS))
def test_every_planet_changes_the_dynamics(env_id):
    finals = []
    for planet in envs.PLANETS:
        env, params = envs.make(env_id, planet)
        obs, state = env.reset(jax.random.key(0), params)
        step = jax.jit(env.step)
        for action in actions(env_id, np.random.default_rng(2), 15):
            obs, state, *_ = step(jax.random.key(1), state, action, params)
        finals.append(np.asarray(obs))
    for i in range(len(finals)):
        for j in range(i):
            assert not np.allclose(finals[i], finals[j], atol=1e-7), (i, j)


def test_derived_cart_pole_fields_follow_the_context():
    _, params = envs.make("cart_pole", "masspole=0.3,length=0.7")
    assert params.total_mass == pytest.approx(1.3)
    assert params.polemass_length == pytest.approx(0.21)


def test_pendulum_planets_scale_the_gravity_its_dynamics_use():
    _, params = envs.make("pendulum", "neptune")
    assert params.g == pytest.approx(10.0 * 11.0 / 9.81)


def test_context_errors():
    with pytest.raises(ConfigError, match="no context features"):
        envs.resolve_context("cart_pole", "g=3")
    with pytest.raises(ConfigError, match="outside"):
        envs.resolve_context("cart_pole", "gravity=-1")
    with pytest.raises(ConfigError, match="neither a planet"):
        envs.resolve_context("cart_pole", "mars")
    with pytest.raises(UnknownNameError, match="cart_pole"):
        envs.make("lunar")

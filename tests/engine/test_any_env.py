"""The engine on environments from sources: wrappers, the CNN torso, continuous host actions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metapbt import envs
from metapbt.engine import presets
from metapbt.engine.factory import make_trainer
from metapbt.engine.networks import ActorCritic, ConvTorso, torso_for
from metapbt.envs import wrappers
from metapbt.errors import ConfigError

LINE = "tests.envs.custom_envs:LINE"
TINY = presets.make("fast", num_envs=4, rollout_len=50, minibatch_size=100, eval_episodes=2)


def test_flatten_wrapper_flattens_observations_and_their_space():
    env, params = envs.make("gymnax:Catch-bsuite")  # (10, 5) board
    assert isinstance(env, wrappers.FlattenObservation)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert obs.shape == (50,) and env.observation_space(params).shape == (50,)
    obs2, *_ = env.step(jax.random.PRNGKey(1), state, 0, params)
    assert obs2.shape == (50,)
    inner_obs, _ = env.unwrapped.reset(jax.random.PRNGKey(0), params)
    np.testing.assert_array_equal(obs, np.ravel(inner_obs))


def test_images_stay_images_and_discrete_observations_become_one_hot():
    env, params = envs.make("gymnax:Breakout-MinAtar")
    obs, _ = env.reset(jax.random.PRNGKey(0), params)
    assert obs.shape == (10, 10, 4) and obs.dtype == jnp.float32
    assert torso_for(obs.shape) == "cnn" and torso_for((4,)) == "mlp"
    env, params = envs.make("gymnax:FrozenLake-misc")
    obs, _ = env.reset(jax.random.PRNGKey(0), params)
    assert obs.shape == (16,) and obs.sum() == 1.0


def test_clip_action_clips_to_the_spaces_bounds():
    env, params = envs.make("gymnax:MountainCarContinuous-v0")
    assert isinstance(env, wrappers.ClipAction)
    assert float(env.action(jnp.array([5.0]), params)[0]) == 1.0
    assert float(env.action(jnp.array([-0.3]), params)[0]) == pytest.approx(-0.3)
    builtin, _ = envs.make("pendulum")  # the built-in envs are not wrapped
    assert not isinstance(builtin, wrappers.Wrapper)


def test_conv_torso_is_a_same_padded_3x3_convolution():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 5, 3))
    torso = ConvTorso(channels=4)
    variables = torso.init(jax.random.PRNGKey(1), x)
    dense = variables["params"]["conv"]
    out = torso.apply(variables, x).reshape(2, 6, 5, 4)
    kernel = dense["kernel"].reshape(3, 3, 3, 4).transpose(1, 2, 0, 3)  # (C, kh, kw) -> HWIO
    ref = jax.lax.conv_general_dilated(
        x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    np.testing.assert_allclose(out, jax.nn.relu(ref + dense["bias"]), rtol=1e-5, atol=1e-5)


def test_the_actor_critic_takes_images_with_either_torso():
    obs = jnp.zeros((7, 10, 10, 4))
    for torso in ("cnn", "mlp"):
        net = ActorCritic(3, False, (8,), "tanh", torso=torso, obs_ndim=3)
        params = net.init(jax.random.PRNGKey(0), obs[:1])
        dist, value = net.apply(params, obs)
        assert dist.logits.shape == (7, 3) and value.shape == (7,)
    with pytest.raises(ConfigError, match="torso"):
        presets.make("fast", torso="resnet")


@pytest.mark.slow
def test_minatar_trains_one_interval_with_the_cnn_torso():
    trainer = make_trainer("gymnax:Breakout-MinAtar", None, TINY, 2)
    assert trainer.network.torso == "cnn"
    state = trainer.init(jax.random.PRNGKey(0), [{"lr": 3e-4}] * 2)
    state = trainer.train(state, TINY.batch_size)
    rewards = trainer.evaluate(state, jax.random.PRNGKey(1))
    assert rewards.shape == (2,) and np.all(np.isfinite(rewards))


def test_a_users_env_trains_per_member_contexts_in_one_program():
    trainer = make_trainer(LINE, ["target=-0.9", "target=0.9"], TINY, 2)
    assert trainer.member_params.target.tolist() == pytest.approx([-0.9, 0.9])
    assert trainer.eval_steps == 40  # its params' max_steps_in_episode
    state = trainer.init(jax.random.PRNGKey(0), [{"lr": 3e-4}] * 2)
    assert trainer.train(state, TINY.batch_size).obs.shape == (2, 4, 2)


def test_ppo_learns_a_users_env():
    """Line pays 1 - |x - target| a step for 40 steps: a random walk earns about 20."""
    config = presets.make("fast", num_envs=8, rollout_len=40, minibatch_size=80)
    trainer = make_trainer(LINE, "target=0.5", config, 1)
    state = trainer.init(jax.random.PRNGKey(0), [{"lr": 3e-3}])
    before = trainer.evaluate(state, jax.random.PRNGKey(1))[0]
    state = trainer.train(state, 40 * config.batch_size)
    after = trainer.evaluate(state, jax.random.PRNGKey(1))[0]
    assert before < 25 and after > 28


def test_the_host_trainer_takes_continuous_actions_within_bounds():
    trainer = make_trainer("gymnasium:MountainCarContinuous-v0", None, TINY, 2)
    assert not trainer._discrete
    state = trainer.init(jax.random.PRNGKey(0), [{"lr": 3e-4}] * 2)
    state, traj, _ = trainer._rollout(
        state, trainer._start(state.key)[0], trainer._start(state.key)[1]
    )
    assert traj.action.shape == (2, TINY.rollout_len, TINY.num_envs, 1)
    assert traj.action.dtype == np.float32 and np.all(np.abs(traj.action) <= 1.0)
    state = trainer.train(state, TINY.batch_size)
    assert np.all(np.isfinite(trainer.evaluate(state, jax.random.PRNGKey(1))))

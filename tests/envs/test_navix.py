"""navix through its adapter: the gymnax interface, same-step resets, the penalty context."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metapbt import envs
from metapbt.engine import presets
from metapbt.engine.factory import make_trainer
from metapbt.errors import UnknownNameError

pytest.importorskip("navix")
EMPTY = "navix:Navix-Empty-5x5-v0"


def _random_play(context: str, steps: int = 150, n: int = 64):
    env, params = envs.make(EMPTY, context)
    keys = jax.random.split(jax.random.PRNGKey(0), n)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    rewards, ends = [], []
    for t in range(steps):
        k_act, k_env = jax.random.split(jax.random.PRNGKey(t + 1))
        action = jax.random.randint(k_act, (n,), 0, 3)  # turn left/right, forward
        obs, state, reward, term, trunc, _ = step(jax.random.split(k_env, n), state, action, params)
        rewards.append(np.asarray(reward))
        ends.append(np.asarray(term | trunc))
    return np.stack(rewards), np.stack(ends), obs


def test_navix_keeps_the_gymnax_contract_and_resets_in_the_same_step():
    spec = envs.spec(EMPTY)
    assert list(spec.features) == ["penality_coeff"] and spec.trainer == "jax"
    rewards, ends, obs = _random_play("penality_coeff=0")
    assert obs.shape == (64, 5, 5, 3) and obs.dtype == jnp.float32
    assert ends.any() and (rewards[ends] > 0).any()  # random walks reach the goal
    assert np.all(rewards[~ends] == 0)  # a reward only where an episode ends: no reset step


def test_the_penalty_context_lowers_the_reward_of_slow_successes_only():
    plain, ends, _ = _random_play("penality_coeff=0")
    penalised, ends_p, _ = _random_play("penality_coeff=0.5")
    np.testing.assert_array_equal(ends, ends_p)  # the dynamics do not change
    goal = plain > 0
    assert np.all(penalised[goal] < plain[goal])
    np.testing.assert_array_equal(penalised[~goal], plain[~goal])


def test_unknown_navix_ids_are_named():
    with pytest.raises(UnknownNameError, match="navix has"):
        envs.spec("navix:Navix-Nope-v0")


@pytest.mark.slow
def test_navix_trains_with_the_cnn_torso():
    config = presets.make("fast", num_envs=4, rollout_len=50, minibatch_size=100, eval_episodes=2)
    trainer = make_trainer(EMPTY, None, config, 2)
    assert trainer.network.torso == "cnn"
    state = trainer.train(trainer.init(jax.random.PRNGKey(0), [{"lr": 3e-4}] * 2), 200)
    assert np.all(np.isfinite(trainer.evaluate(state, jax.random.PRNGKey(1))))

import distrax
import jax.numpy as jnp
import numpy as np
import pytest

from metapbt import ConfigError
from metapbt.engine import presets
from metapbt.engine.ppo import gae, ppo_loss, update_kl_coeff


def naive_gae(r, v, d, last, gamma, lam):
    T, E = r.shape
    adv = np.zeros((T, E))
    for e in range(E):
        running = 0.0
        for t in reversed(range(T)):
            next_v = last[e] if t == T - 1 else v[t + 1, e]
            nd = 1.0 - d[t, e]
            delta = r[t, e] + gamma * next_v * nd - v[t, e]
            running = delta + gamma * lam * nd * running
            adv[t, e] = running
    return adv


def test_gae_equals_a_naive_loop():
    rng = np.random.default_rng(0)
    r, v = rng.standard_normal((7, 3)), rng.standard_normal((7, 3))
    d = (rng.uniform(size=(7, 3)) < 0.3).astype(np.float32)
    last = rng.standard_normal(3)
    adv, ret = gae(
        jnp.asarray(r), jnp.asarray(v), jnp.asarray(d), jnp.asarray(last), 0.9, jnp.float32(0.8)
    )
    expected = naive_gae(r, v, d, last, 0.9, 0.8)
    np.testing.assert_allclose(adv, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, expected + v, rtol=1e-5, atol=1e-5)


def test_ppo_loss_matches_hand_computation():
    logits = jnp.log(jnp.array([[0.5, 0.5], [0.2, 0.8]]))
    values = jnp.array([1.0, 2.0])

    def apply_fn(params, obs):
        return distrax.Categorical(logits=logits), values

    old_log_prob = jnp.log(jnp.array([0.25, 0.5]))
    action = jnp.array([0, 1])
    adv = jnp.array([1.0, -1.0])
    target = jnp.array([0.0, 6.0])
    config = presets.make("fast", vf_coef=0.5, vf_clip=10.0)
    hp = {"clip": jnp.float32(0.2), "ent_coef": jnp.float32(0.1)}
    loss, info = ppo_loss(
        None, apply_fn, (None, action, old_log_prob, adv, target), hp, jnp.float32(0.3), config
    )
    # ratios: 0.5/0.25 = 2.0 and 0.8/0.5 = 1.6; standardised advantages: +1, -1.
    ratio = np.array([2.0, 1.6])
    a = np.array([1.0, -1.0])
    policy = -np.mean(np.minimum(ratio * a, np.clip(ratio, 0.8, 1.2) * a))
    value = np.mean(np.minimum(np.array([1.0, 16.0]), 10.0))
    entropy = np.mean([np.log(2), -(0.2 * np.log(0.2) + 0.8 * np.log(0.8))])
    kl = np.mean(np.log([0.25, 0.5]) - np.log([0.5, 0.8]))
    expected = policy + 0.5 * value - 0.1 * entropy + 0.3 * kl
    assert float(info["policy"]) == pytest.approx(policy, rel=1e-4)
    assert float(info["value"]) == pytest.approx(value, rel=1e-5)
    assert float(loss) == pytest.approx(expected, rel=1e-4)


def test_adaptive_kl_coefficient():
    assert float(update_kl_coeff(jnp.float32(0.2), jnp.float32(0.05), 0.01)) == pytest.approx(0.3)
    assert float(update_kl_coeff(jnp.float32(0.2), jnp.float32(0.001), 0.01)) == pytest.approx(0.1)
    assert float(update_kl_coeff(jnp.float32(0.2), jnp.float32(0.01), 0.01)) == pytest.approx(0.2)


def test_presets_are_validated():
    assert presets.make("paper").batch_size == 20_000
    with pytest.raises(ConfigError, match="divide"):
        presets.make("fast", minibatch_size=7)

import distrax
import jax
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


def test_continuous_ppo_loss_and_gaussian_log_probs_by_hand():
    mean = jnp.array([[0.0, 1.0], [0.5, -0.5]])
    log_std = jnp.array([0.0, np.log(0.5)])  # state-independent, as ActorCritic's
    values = jnp.array([0.0, 0.0])

    def apply_fn(params, obs):
        return distrax.MultivariateNormalDiag(mean, jnp.exp(log_std)), values

    action = jnp.array([[1.0, 1.0], [0.5, 0.0]])
    std = np.array([1.0, 0.5])

    def log_prob(a, m):  # sum over dimensions of log N(a; m, std)
        z = (np.asarray(a) - np.asarray(m)) / std
        return float(np.sum(-0.5 * z**2 - np.log(std) - 0.5 * np.log(2 * np.pi)))

    new = np.array([log_prob(action[i], mean[i]) for i in range(2)])
    dist, _ = apply_fn(None, None)
    np.testing.assert_allclose(dist.log_prob(action), new, rtol=1e-6)
    old = new - np.log([1.5, 0.5])  # ratios 1.5 and 0.5
    adv = jnp.array([2.0, -2.0])
    config = presets.make("fast", vf_coef=0.0)
    hp = {"clip": jnp.float32(0.2), "ent_coef": jnp.float32(0.0)}
    batch = (None, action, jnp.asarray(old, jnp.float32), adv, values)
    loss, info = ppo_loss(None, apply_fn, batch, hp, jnp.float32(0.0), config)
    ratio, a = np.array([1.5, 0.5]), np.array([1.0, -1.0])  # advantages standardised
    policy = -np.mean(np.minimum(ratio * a, np.clip(ratio, 0.8, 1.2) * a))
    assert float(info["policy"]) == pytest.approx(policy, rel=1e-4)
    entropy = np.sum(0.5 * np.log(2 * np.pi * np.e * std**2))
    assert float(info["entropy"]) == pytest.approx(entropy, rel=1e-5)
    assert float(loss) == pytest.approx(policy, rel=1e-4)


def test_adaptive_kl_coefficient():
    assert float(update_kl_coeff(jnp.float32(0.2), jnp.float32(0.05), 0.01)) == pytest.approx(0.3)
    assert float(update_kl_coeff(jnp.float32(0.2), jnp.float32(0.001), 0.01)) == pytest.approx(0.1)
    assert float(update_kl_coeff(jnp.float32(0.2), jnp.float32(0.01), 0.01)) == pytest.approx(0.2)


def test_presets_are_validated():
    assert presets.make("paper").batch_size == 20_000
    with pytest.raises(ConfigError, match="divide"):
        presets.make("fast", minibatch_size=7)


def test_classic_preset_changes_only_its_environments_and_never_the_batch():
    fast = presets.make("fast")
    assert presets.make("classic") == fast
    assert presets.make("classic", env="cart_pole") == fast
    pendulum = presets.make("classic", env="pendulum")
    assert (pendulum.gamma, pendulum.reward_scale, pendulum.ent_coef) == (0.95, 0.1, 0.0)
    assert presets.make("classic", env="mountain_car").scale_obs
    assert presets.make("fast", env="pendulum") == fast  # other presets ignore the env
    # A study's interval is checked against the batch without an env: it must not vary over
    # the environments a preset is meant for.
    for name in presets.PRESETS.names():
        meant = [e for e in presets.CLASSIC_SETTINGS if name in presets.for_env(e)]
        sizes = {presets.make(name, env=e).batch_size for e in (None, *meant)}
        assert len(sizes) == 1, name
    with pytest.raises(ConfigError, match="reward_scale"):
        presets.make("fast", reward_scale=0.0)


def _member_and_rollout(config):
    from metapbt.engine.networks import ActorCritic
    from metapbt.engine.ppo import MemberState, Transition, make_optimizer

    net = ActorCritic(action_dim=2, continuous=False, hidden=(8,), activation="tanh")
    rng = np.random.default_rng(3)
    T, E = config.rollout_len, config.num_envs
    obs = jnp.asarray(rng.standard_normal((T, E, 3)), jnp.float32)
    params = net.init(jax.random.PRNGKey(0), obs[0, :1])
    opt = make_optimizer(config)
    hparams = {"lambda": jnp.float32(0.9), "clip": jnp.float32(0.2), "ent_coef": jnp.float32(0.0)}
    state = MemberState(
        params, opt.init(params), None, obs[0], jax.random.PRNGKey(1), jnp.float32(0.0), hparams
    )
    dist, value = net.apply(params, obs)
    action = jnp.asarray(rng.integers(0, 2, (T, E)))
    traj = Transition(
        obs,
        action,
        jnp.asarray(rng.uniform(-16, 0, (T, E)), jnp.float32),
        jnp.zeros((T, E), bool),
        value,
        dist.log_prob(action),
    )
    return net, opt, state, traj, jnp.zeros(E, jnp.float32)


def test_reward_scale_multiplies_the_rewards_the_update_learns_from():
    from metapbt.engine.ppo import ppo_update

    base = presets.make("fast", num_envs=2, rollout_len=8, minibatch_size=8, epochs=2)
    scaled = base.with_overrides(reward_scale=0.1)
    net, opt, state, traj, last = _member_and_rollout(base)

    def update(config, rollout):
        out = ppo_update(state, rollout, last, net.apply, opt, config)
        return np.concatenate([np.ravel(x) for x in jax.tree.leaves(out.params)])

    by_config = update(scaled, traj)
    by_hand = update(base, traj._replace(reward=traj.reward * 0.1))
    np.testing.assert_allclose(by_config, by_hand, rtol=1e-6, atol=1e-7)
    assert not np.allclose(by_config, update(base, traj))


def test_network_scales_observations_before_its_layers():
    from metapbt.engine.networks import ActorCritic

    plain = ActorCritic(action_dim=1, continuous=True, hidden=(8,), activation="tanh")
    scaled = ActorCritic(
        action_dim=1,
        continuous=True,
        hidden=(8,),
        activation="tanh",
        obs_center=(1.0, -2.0),
        obs_scale=(2.0, 0.5),
    )
    x = jnp.array([[3.0, -1.0], [0.0, 0.0]])
    params = plain.init(jax.random.PRNGKey(0), x)
    dist_s, value_s = scaled.apply(params, x)
    dist_p, value_p = plain.apply(params, (x - jnp.array([1.0, -2.0])) / jnp.array([2.0, 0.5]))
    np.testing.assert_allclose(value_s, value_p, rtol=1e-6)
    np.testing.assert_allclose(dist_s.mean(), dist_p.mean(), rtol=1e-6)


def test_bounds_scaling_maps_finite_bounds_to_unit_and_leaves_the_rest():
    from metapbt.engine.networks import bounds_scaling

    low = np.array([-1.2, -0.07, -np.inf, -3.4e38])
    high = np.array([0.6, 0.07, np.inf, 3.4e38])
    center, scale = bounds_scaling(low, high)
    x = np.array([0.6, -0.07, 5.0, 2.0])
    scaled = (x - np.array(center)) / np.array(scale)
    np.testing.assert_allclose(scaled, [1.0, -1.0, 5.0, 2.0])


def test_trainers_scale_observations_by_the_envs_bounds_when_asked():
    from metapbt.engine.trainer import PopulationTrainer

    car = PopulationTrainer("mountain_car", "earth", presets.make("classic", env="mountain_car"), 1)
    np.testing.assert_allclose(car.network.obs_center, [-0.3, 0.0], atol=1e-6)
    np.testing.assert_allclose(car.network.obs_scale, [0.9, 0.07], rtol=1e-6)
    pole = PopulationTrainer("cart_pole", "earth", presets.make("fast", scale_obs=True), 1)
    # CartPole's velocities are unbounded: only position and angle are scaled.
    assert pole.network.obs_scale[1] == pole.network.obs_scale[3] == 1.0
    assert pole.network.obs_scale[0] == pytest.approx(4.8)
    assert (
        PopulationTrainer("cart_pole", "earth", presets.make("fast"), 1).network.obs_scale is None
    )

"""Running observation normalisation: the statistics, who updates them, where they go."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metapbt import Clone, Keep
from metapbt.engine.factory import make_trainer
from metapbt.engine.networks import OBS_CLIP, OBS_STATS, ActorCritic, update_obs_stats
from tests.engine.helpers import configs, tiny

NORM = tiny(normalize_obs=True)


def _network():
    return ActorCritic(
        action_dim=2, continuous=False, hidden=(8,), activation="tanh", normalize_obs=True
    )


def test_merged_statistics_equal_those_of_every_observation_seen():
    params = _network().init(jax.random.PRNGKey(0), jnp.zeros((1, 3)))
    stats = params[OBS_STATS]
    assert float(stats["count"]) == 0.0
    rng = np.random.default_rng(0)
    batches = [
        rng.normal(5.0, 3.0, (7, 2, 3)),
        rng.normal(-1.0, 0.5, (11, 3)),
        rng.normal(size=(1, 3)),
    ]
    for batch in batches:
        params = update_obs_stats(params, jnp.asarray(batch, jnp.float32))
    seen = np.concatenate([b.reshape(-1, 3) for b in batches])
    stats = params[OBS_STATS]
    assert float(stats["count"]) == len(seen)
    np.testing.assert_allclose(stats["mean"], seen.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stats["var"], seen.var(0), rtol=1e-4, atol=1e-5)
    # Without statistics (normalize_obs off) the parameters pass unchanged.
    plain = ActorCritic(2, False, (8,), "tanh").init(jax.random.PRNGKey(0), jnp.zeros((1, 3)))
    assert update_obs_stats(plain, jnp.ones((4, 3))) is plain


def test_the_networks_see_standardised_clipped_observations_and_no_gradient_reaches_the_stats():
    network = _network()
    params = network.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)))
    params = {
        **params,
        OBS_STATS: {
            "count": jnp.float32(10.0),
            "mean": jnp.asarray([1.0, 2.0, 3.0]),
            "var": jnp.asarray([4.0, 1.0, 0.25]),
        },
    }
    reference = ActorCritic(2, False, (8,), "tanh")
    obs = jnp.asarray([[3.0, 2.0, 2.5], [1.0, 1e4, 3.0]])
    expected = jnp.asarray([[1.0, 0.0, -1.0], [0.0, OBS_CLIP, 0.0]])
    _, value = network.apply(params, obs)
    _, want = reference.apply({"params": params["params"]}, expected)
    np.testing.assert_allclose(value, want, rtol=1e-5, atol=1e-6)
    grads = jax.grad(lambda p: network.apply(p, obs)[1].sum())(params)
    for leaf in jax.tree.leaves(grads[OBS_STATS]):
        assert not np.asarray(leaf).any()


@pytest.mark.parametrize("env", ["cart_pole", "lunar_lander"])
def test_training_counts_every_observation_and_a_clone_takes_its_donors_statistics(env):
    trainer = make_trainer(env, "earth", NORM, 2)
    state = trainer.init(jax.random.PRNGKey(0), configs([1e-3, 5e-4]))
    state = trainer.train(state, 2 * NORM.batch_size)
    stats = state.params[OBS_STATS]
    np.testing.assert_array_equal(stats["count"], [2 * NORM.batch_size] * 2)
    assert not np.allclose(stats["mean"][0], stats["mean"][1])  # each member its own
    new = configs([1e-3, 5e-4])
    cloned = trainer.apply(state, [Keep(0, new[0]), Clone(1, 0, new[1])])
    for name in ("count", "mean", "var"):
        np.testing.assert_array_equal(cloned.params[OBS_STATS][name][1], stats[name][0])
    assert np.isfinite(trainer.evaluate(cloned, jax.random.PRNGKey(1))).all()

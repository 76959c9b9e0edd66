import jax
import numpy as np
import pytest

from metapbt import Clone, ConfigError, Keep
from metapbt.engine import presets
from metapbt.engine.trainer import PopulationTrainer
from tests.engine.helpers import configs, leaves, same_member

TINY = presets.make(
    "fast", num_envs=4, rollout_len=32, epochs=2, minibatch_size=64, hidden=(16,), eval_episodes=2
)


@pytest.fixture(scope="module")
def trainer():
    return PopulationTrainer("cart_pole", "earth", TINY, 3)


def test_one_members_lr_changes_only_its_update(trainer):
    base = trainer.init(jax.random.PRNGKey(0), configs([1e-3, 1e-3, 1e-3]))
    changed = trainer.set_hparams(base, configs([1e-3, 1e-2, 1e-3]))
    a = trainer.train(base, TINY.batch_size)
    b = trainer.train(changed, TINY.batch_size)
    for member, differs in ((0, False), (1, True), (2, False)):
        same = same_member(a.params, b.params, member)
        assert same != differs, member
    assert trainer._train._cache_size() == 1  # a new lr did not recompile


def test_clone_copies_weights_and_optimizer_state_exactly(trainer):
    state = trainer.init(jax.random.PRNGKey(1), configs([1e-3, 5e-4, 2e-4]))
    state = trainer.train(state, TINY.batch_size)
    new = configs([1e-3, 5e-4, 7e-4])
    decisions = [Keep(0, new[0]), Keep(1, new[1]), Clone(2, 0, new[2])]
    cloned = trainer.apply(state, decisions)
    for x, y in zip(leaves(cloned.params, 2), leaves(state.params, 0), strict=True):
        np.testing.assert_array_equal(x, y)
    src = jax.tree.leaves(state.opt_state.inner_state)
    dst = jax.tree.leaves(cloned.opt_state.inner_state)
    for x, y in zip(src, dst, strict=True):
        np.testing.assert_array_equal(np.asarray(x)[0], np.asarray(y)[2])
    assert float(cloned.opt_state.hyperparams["learning_rate"][2]) == pytest.approx(7e-4)
    for x, y in zip(leaves(cloned.params, 1), leaves(state.params, 1), strict=True):
        np.testing.assert_array_equal(x, y)  # untouched member


def test_interval_must_fit_the_batch_and_space_must_be_tunable(trainer):
    state = trainer.init(jax.random.PRNGKey(0), configs([1e-3] * 3))
    with pytest.raises(ConfigError, match="multiple of the batch"):
        trainer.train(state, TINY.batch_size + 1)
    with pytest.raises(ConfigError, match="cannot tune"):
        trainer.init(jax.random.PRNGKey(0), [{"lr": 1e-3, "gamma": 0.9}] * 3)


def test_fast_preset_learns_cart_pole():
    trainer = PopulationTrainer("cart_pole", "earth", presets.make("fast"), 2)
    state = trainer.init(jax.random.PRNGKey(0), configs([1e-3, 1e-3])[:2])
    before = trainer.evaluate(state, jax.random.PRNGKey(1))
    state = trainer.train(state, 120_000)
    after = trainer.evaluate(state, jax.random.PRNGKey(2))
    assert before.max() < 60
    # 500 is the maximum; random play scores about 20.
    assert after.min() > 100 and after.max() > 300


@pytest.mark.parametrize("env_id", ["mountain_car", "pendulum", "acrobot"])
def test_every_environment_trains_and_evaluates(env_id):
    trainer = PopulationTrainer(env_id, "neptune", TINY, 2)
    state = trainer.init(jax.random.PRNGKey(0), configs([1e-3, 1e-4])[:2])
    state = trainer.train(state, TINY.batch_size)
    rewards = trainer.evaluate(state, jax.random.PRNGKey(1))
    assert rewards.shape == (2,) and np.isfinite(rewards).all()


def test_a_diverged_member_scores_nan_and_is_repaired_by_cloning(trainer):
    state = trainer.init(jax.random.PRNGKey(0), configs([1e-3] * 3))
    broken = jax.tree.map(lambda x: x.at[1].set(np.nan), state.params)
    state = trainer.apply(state, [Keep(m, c) for m, c in enumerate(configs([1e-3] * 3))])
    state = type(state)(**{**state.__dict__, "params": broken})
    rewards = trainer.evaluate(state, jax.random.PRNGKey(1))
    assert np.isnan(rewards[1]) and np.isfinite(rewards[[0, 2]]).all()
    new = configs([1e-3] * 3)
    repaired = trainer.apply(state, [Keep(0, new[0]), Clone(1, 2, new[1]), Keep(2, new[2])])
    assert np.isfinite(trainer.evaluate(repaired, jax.random.PRNGKey(1))).all()


def test_members_may_each_have_a_context_given_as_traced_parameters():
    config = presets.make("classic", env="cart_pole")
    mixed = PopulationTrainer("cart_pole", ["earth", "gravity=30", "earth"], config, 3)
    assert list(mixed.member_params.gravity) == pytest.approx([9.8, 30.0, 9.8])  # gymnax: 9.8
    same = PopulationTrainer("cart_pole", ["earth"] * 3, config, 3)
    assert same.member_params is None  # one context: constants, as a lone run
    with pytest.raises(ConfigError, match="3 members need 3 contexts, got 2"):
        PopulationTrainer("cart_pole", ["earth", "neptune"], config, 3)

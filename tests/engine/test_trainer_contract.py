"""The population trainers' shared contract, on the JAX trainer (CartPole) and the host one
(LunarLander): per-member hyperparameters without recompiling, exact clones, NaN for a
diverged member, intervals in whole batches."""

import jax
import numpy as np
import pytest

from metapbt import Clone, ConfigError, Keep
from metapbt.engine.host_trainer import HostPopulationTrainer
from metapbt.engine.trainer import PopulationTrainer
from tests.engine.helpers import configs, leaves, same_member, tiny

JAX_TINY = tiny()
HOST_TINY = tiny(num_envs=2, minibatch_size=32)


@pytest.fixture(scope="module", params=["jax", "host"])
def kit(request):
    """(trainer, preset, how many programs the update has compiled: a new value adds none)."""
    if request.param == "jax":
        trainer = PopulationTrainer("cart_pole", "earth", JAX_TINY, 3)
        return trainer, JAX_TINY, trainer._train.cache_size
    trainer = HostPopulationTrainer("lunar_lander", "neptune", HOST_TINY, 3)
    return trainer, HOST_TINY, trainer._learn._cache_size


def test_one_members_lr_changes_only_its_update(kit):
    trainer, preset, program = kit
    base = trainer.init(jax.random.PRNGKey(0), configs([1e-3, 1e-3, 1e-3]))
    changed = trainer.set_hparams(base, configs([1e-3, 1e-2, 1e-3]))
    a = trainer.train(base, preset.batch_size)
    # (host) ``changed`` shares base's episodes, which ``a`` moved on: its episodes restart
    # from its keys, which are base's, so members 0 and 2 see the same episodes as in ``a``.
    b = trainer.train(changed, preset.batch_size)
    for member, differs in ((0, False), (1, True), (2, False)):
        assert same_member(a.params, b.params, member) != differs, member
    assert program() == 1  # a new lr did not recompile


def test_clone_copies_weights_and_optimizer_state_exactly(kit):
    trainer, preset, _ = kit
    state = trainer.init(jax.random.PRNGKey(1), configs([1e-3, 5e-4, 2e-4]))
    state = trainer.train(state, preset.batch_size)
    new = configs([1e-3, 5e-4, 7e-4])
    cloned = trainer.apply(state, [Keep(0, new[0]), Keep(1, new[1]), Clone(2, 0, new[2])])
    for x, y in zip(leaves(cloned.params, 2), leaves(state.params, 0), strict=True):
        np.testing.assert_array_equal(x, y)
    src = jax.tree.leaves(state.opt_state.inner_state)
    dst = jax.tree.leaves(cloned.opt_state.inner_state)
    for x, y in zip(src, dst, strict=True):
        np.testing.assert_array_equal(np.asarray(x)[0], np.asarray(y)[2])
    assert float(cloned.opt_state.hyperparams["learning_rate"][2]) == pytest.approx(7e-4)
    assert same_member(cloned.params, state.params, 1)  # untouched member


def test_a_diverged_member_scores_nan_and_training_goes_on(kit):
    trainer, preset, _ = kit
    state = trainer.init(jax.random.PRNGKey(0), configs([1e-3] * 3))
    broken = jax.tree.map(lambda x: x.at[1].set(np.nan), state.params)
    state = type(state)(**{**state.__dict__, "params": broken})
    rewards = trainer.evaluate(state, jax.random.PRNGKey(1))
    assert np.isnan(rewards[1]) and np.isfinite(rewards[[0, 2]]).all()
    state = trainer.train(state, preset.batch_size)  # a diverged member must not crash training
    rewards = trainer.evaluate(state, jax.random.PRNGKey(1))
    assert np.isnan(rewards[1]) and np.isfinite(rewards[[0, 2]]).all()


def test_intervals_are_whole_batches_and_the_space_must_be_tunable(kit):
    trainer, preset, _ = kit
    state = trainer.init(jax.random.PRNGKey(0), configs([1e-3] * 3))
    with pytest.raises(ConfigError, match="multiple of the batch"):
        trainer.train(state, preset.batch_size + 1)
    with pytest.raises(ConfigError, match="cannot tune"):
        trainer.init(jax.random.PRNGKey(0), [{"lr": 1e-3, "momentum": 0.9}] * 3)

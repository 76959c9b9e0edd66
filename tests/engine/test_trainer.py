import jax
import numpy as np
import pytest

from metapbt import Clone, ConfigError, Keep
from metapbt.engine import presets
from metapbt.engine.trainer import PopulationTrainer
from tests.engine.helpers import configs, tiny

TINY = tiny()


def test_fast_preset_learns_cart_pole():
    trainer = PopulationTrainer("cart_pole", "earth", presets.make("fast"), 2)
    state = trainer.init(jax.random.PRNGKey(0), configs([1e-3, 1e-3])[:2])
    before = trainer.evaluate(state, jax.random.PRNGKey(1))
    state = trainer.train(state, 120_000)
    after = trainer.evaluate(state, jax.random.PRNGKey(2))
    assert before.max() < 60
    # 500 is the maximum; random play scores about 20.
    assert after.min() > 100 and after.max() > 300


@pytest.mark.parametrize(  # one in the default job; the others' dynamics: test_classic_control.py
    "env_id",
    [
        pytest.param("mountain_car", marks=pytest.mark.slow),
        "pendulum",
        pytest.param("acrobot", marks=pytest.mark.slow),
    ],
)
def test_every_environment_trains_and_evaluates(env_id):
    trainer = PopulationTrainer(env_id, "neptune", TINY, 2)
    state = trainer.init(jax.random.PRNGKey(0), configs([1e-3, 1e-4])[:2])
    state = trainer.train(state, TINY.batch_size)
    rewards = trainer.evaluate(state, jax.random.PRNGKey(1))
    assert rewards.shape == (2,) and np.isfinite(rewards).all()


def test_a_diverged_member_scores_nan_and_is_repaired_by_cloning(cart_pole_trainer):
    state = cart_pole_trainer.init(jax.random.PRNGKey(0), configs([1e-3] * 3))
    broken = jax.tree.map(lambda x: x.at[1].set(np.nan), state.params)
    state = cart_pole_trainer.apply(state, [Keep(m, c) for m, c in enumerate(configs([1e-3] * 3))])
    state = type(state)(**{**state.__dict__, "params": broken})
    rewards = cart_pole_trainer.evaluate(state, jax.random.PRNGKey(1))
    assert np.isnan(rewards[1]) and np.isfinite(rewards[[0, 2]]).all()
    new = configs([1e-3] * 3)
    repaired = cart_pole_trainer.apply(
        state, [Keep(0, new[0]), Clone(1, 2, new[1]), Keep(2, new[2])]
    )
    assert np.isfinite(cart_pole_trainer.evaluate(repaired, jax.random.PRNGKey(1))).all()


def test_members_may_each_have_a_context_given_as_traced_parameters():
    config = presets.make("classic", env="cart_pole")
    mixed = PopulationTrainer("cart_pole", ["earth", "gravity=30", "earth"], config, 3)
    assert list(mixed.member_params.gravity) == pytest.approx([9.8, 30.0, 9.8])  # gymnax: 9.8
    same = PopulationTrainer("cart_pole", ["earth"] * 3, config, 3)
    assert same.member_params is None  # one context: constants, as a lone run
    with pytest.raises(ConfigError, match="3 members need 3 contexts, got 2"):
        PopulationTrainer("cart_pole", ["earth", "neptune"], config, 3)

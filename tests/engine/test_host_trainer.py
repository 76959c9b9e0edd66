import json

import jax
import numpy as np
import pytest

from metapbt import Clone, ConfigError, History, Keep
from metapbt.engine.factory import make_trainer
from metapbt.engine.host_trainer import Episodes, HostPopulationTrainer
from metapbt.engine.trainer import PopulationTrainer
from metapbt.runs.run import RunConfig, run
from tests.engine.helpers import configs, same_member, tiny

TINY = tiny(num_envs=2, minibatch_size=32)


def test_factory_picks_the_trainer_by_environment():
    assert isinstance(make_trainer("lunar_lander", None, TINY, 1), HostPopulationTrainer)
    assert isinstance(make_trainer("cart_pole", None, TINY, 1), PopulationTrainer)
    with pytest.raises(ConfigError, match="inside JAX"):
        HostPopulationTrainer("cart_pole", None, TINY, 1)


def test_shapes_training_and_evaluation(lunar_trainer):
    state = lunar_trainer.init(jax.random.PRNGKey(0), configs([1e-3, 1e-3, 1e-3]))
    assert state.obs.shape == (3, TINY.num_envs, 8)
    assert isinstance(state.env_state, Episodes) and state.env_state.live
    assert lunar_trainer.context["gravity"] == pytest.approx(-10 * 11.0 / 9.81)
    trained = lunar_trainer.train(state, 2 * TINY.batch_size)
    for before, after in zip(
        jax.tree.leaves(state.params), jax.tree.leaves(trained.params), strict=True
    ):
        assert before.shape == after.shape and before.shape[0] == 3
        assert not np.array_equal(before, after)
    rewards = lunar_trainer.evaluate(trained, jax.random.PRNGKey(1))
    assert rewards.shape == (3,) and np.isfinite(rewards).all()
    # Evaluation is a function of the key: the same key replays the same episodes.
    np.testing.assert_array_equal(rewards, lunar_trainer.evaluate(trained, jax.random.PRNGKey(1)))
    with pytest.raises(ConfigError, match="multiple of the batch"):
        lunar_trainer.train(trained, TINY.batch_size + 1)


def test_training_continues_episodes_from_the_latest_state_only(lunar_trainer):
    state = lunar_trainer.init(jax.random.PRNGKey(3), configs([1e-3] * 3))
    once = lunar_trainer.train(state, TINY.batch_size)
    twice = lunar_trainer.train(once, TINY.batch_size)  # continues the episodes
    again = lunar_trainer.train(once, TINY.batch_size)  # an old state: fresh episodes from its keys
    again_2 = lunar_trainer.train(once, TINY.batch_size)
    assert all(same_member(again.params, again_2.params, m) for m in range(3))
    assert not np.array_equal(np.asarray(twice.obs), np.asarray(again.obs))
    assert twice.env_state.live and not once.env_state.live
    # A checkpoint round trip keeps no environments: the restored state starts fresh episodes.
    restored = jax.tree.unflatten(jax.tree.structure(twice), jax.tree.leaves(twice))
    assert not restored.env_state.live and twice.env_state.live


def test_a_states_episodes_are_its_own(lunar_trainer):
    state = lunar_trainer.init(jax.random.PRNGKey(4), configs([1e-3] * 3))
    first = lunar_trainer.train(state, TINY.batch_size)
    straight = lunar_trainer.train(first, TINY.batch_size)
    other = lunar_trainer.init(jax.random.PRNGKey(4), configs([1e-3] * 3))
    first_again = lunar_trainer.train(other, TINY.batch_size)
    lunar_trainer.train(
        lunar_trainer.init(jax.random.PRNGKey(5), configs([1e-3] * 3)), TINY.batch_size
    )
    interleaved = lunar_trainer.train(first_again, TINY.batch_size)  # another run trained meanwhile
    assert all(same_member(straight.params, interleaved.params, m) for m in range(3))
    np.testing.assert_array_equal(np.asarray(straight.obs), np.asarray(interleaved.obs))


def test_apply_keeps_each_slots_episodes(lunar_trainer):
    state = lunar_trainer.train(
        lunar_trainer.init(jax.random.PRNGKey(1), configs([1e-3] * 3)), TINY.batch_size
    )
    new = configs([1e-3, 5e-4, 7e-4])
    cloned = lunar_trainer.apply(state, [Keep(0, new[0]), Keep(1, new[1]), Clone(2, 0, new[2])])
    # training goes on without restarting episodes (the shared contract is in
    # test_trainer_contract.py)
    assert cloned.env_state is state.env_state and cloned.env_state.live


def test_a_lunar_lander_run_finishes_with_its_outputs(tmp_path):
    config = RunConfig(
        env="lunar_lander",
        preset="classic",  # the cheap batch (2000); LunarLander's own default is box2d
        context="leg_height=12",
        method="pbt",
        population=2,
        budget=4000,
        interval=2000,
        seed=1,
    )
    summary = run(config, tmp_path / "run")
    history = History.from_parquet(tmp_path / "run" / "history.parquet").to_frame()
    assert len(history) == 2 * 2 and set(history["step"]) == {2000, 4000}
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["env"] == "lunar_lander" and saved["context_values"]["leg_height"] == 12
    assert np.isfinite(summary["final_best"])
    assert (tmp_path / "run" / "run.png").exists()

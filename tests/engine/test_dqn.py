"""DQN: the buffer, schedule and targets against closed forms; the agent's traced
hyperparameters, masked gradient steps and clones; learning CartPole with a small threshold."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metapbt import Clone, ConfigError, Keep
from metapbt.engine import dqn
from metapbt.engine.agent import Rollout
from metapbt.engine.dqn_agent import DQNAgent, default_space
from metapbt.engine.dqn_presets import DQN_PRESETS, DQNConfig
from metapbt.engine.trainer import PopulationTrainer
from metapbt.population.space import Categorical, Float, Int, SearchSpace

TINY = DQNConfig(
    num_envs=4,
    rollout_len=2,
    buffer_size=64,
    learning_starts=8,
    sample_size=8,
    updates=2,
    hidden=(16,),
    explore_steps=1_000,
)


def test_the_ring_buffer_wraps_caps_its_count_and_samples_only_stored_rows():
    buffer = dqn.buffer_init(5, (2,))
    rows = lambda lo, hi: jnp.arange(lo, hi, dtype=jnp.float32)  # noqa: E731
    add = lambda b, lo, hi: dqn.buffer_add(  # noqa: E731
        b,
        jnp.stack([rows(lo, hi)] * 2, -1),
        jnp.arange(lo, hi),
        rows(lo, hi),
        jnp.stack([rows(lo, hi) + 1] * 2, -1),
        jnp.arange(lo, hi) % 2 == 0,
    )
    buffer = add(buffer, 0, 3)
    assert int(buffer.pos) == 3 and int(buffer.count) == 3
    sample = dqn.buffer_sample(buffer, jax.random.PRNGKey(0), 200)
    assert set(np.asarray(sample.action).tolist()) == {0, 1, 2}  # never an empty row
    np.testing.assert_array_equal(sample.next_obs[:, 0], sample.obs[:, 0] + 1)
    buffer = add(buffer, 3, 7)  # 4 more: 2 fit, 2 overwrite the oldest
    assert int(buffer.pos) == 2 and int(buffer.count) == 5
    np.testing.assert_array_equal(buffer.action, [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buffer.done, [False, True, True, False, True])


def test_epsilon_falls_linearly_then_holds():
    eps = lambda step, decay: float(dqn.epsilon(jnp.float32(step), 1.0, 0.1, decay))  # noqa: E731
    assert eps(0, 100.0) == pytest.approx(1.0)
    assert eps(50, 100.0) == pytest.approx(0.55)
    assert eps(100, 100.0) == pytest.approx(0.1) and eps(10_000, 100.0) == pytest.approx(0.1)
    assert eps(0, 0.0) == pytest.approx(0.1)  # no decay: the final rate from the start
    q = jnp.array([[0.0, 1.0, 0.0]] * 2000)
    greedy = dqn.epsilon_greedy(jax.random.PRNGKey(0), q, jnp.float32(0.0))
    assert (np.asarray(greedy) == 1).all()
    mixed = np.asarray(dqn.epsilon_greedy(jax.random.PRNGKey(0), q, jnp.float32(0.3)))
    assert (mixed != 1).mean() == pytest.approx(0.3 * 2 / 3, abs=0.03)


def test_double_q_targets_let_the_online_net_choose_and_the_target_net_value():
    apply = lambda w, x: x @ w  # noqa: E731  a linear Q over 2 features, 2 actions
    online = jnp.array([[1.0, 0.0], [0.0, 1.0]])  # Q(s') = s'
    target = jnp.array([[10.0, 0.0], [0.0, 20.0]])
    batch = dqn.ReplayBuffer(
        obs=jnp.array([[1.0, 0.0], [0.0, 1.0]]),
        action=jnp.array([0, 1]),
        reward=jnp.array([1.0, 2.0]),
        next_obs=jnp.array([[0.2, 0.1], [0.3, 0.9]]),
        done=jnp.array([False, True]),
        pos=jnp.int32(0),
        count=jnp.int32(2),
    )
    # Row 0: online picks action 0 (0.2 > 0.1), the target values it at 10 * 0.2 = 2.
    targets = dqn.double_q_targets(apply, online, target, batch, jnp.float32(0.5))
    np.testing.assert_allclose(targets, [1.0 + 0.5 * 2.0, 2.0])  # row 1 ended: no bootstrap
    q_taken = np.array([1.0, 1.0])  # Q(s, a) of the actions taken under ``online``
    loss = dqn.td_loss(apply, online, target, batch, jnp.float32(0.5))
    assert float(loss) == pytest.approx(0.5 * np.mean((q_taken - np.asarray(targets)) ** 2))


def test_polyak_moves_the_target_by_tau():
    target, online = {"w": jnp.array([0.0, 4.0])}, {"w": jnp.array([2.0, 0.0])}
    np.testing.assert_allclose(dqn.polyak(target, online, 0.25)["w"], [0.5, 3.0])
    np.testing.assert_allclose(dqn.polyak(target, online, 1.0)["w"], online["w"])
    np.testing.assert_allclose(dqn.polyak(target, online, 0.0)["w"], target["w"])


def _trainer(config: DQNConfig = TINY, size: int = 3) -> PopulationTrainer:
    return PopulationTrainer("cart_pole", "earth", config, size, agent="dqn")


def test_dqn_members_take_their_own_hyperparameters_without_recompiling():
    space = SearchSpace({"lr": Float(1e-4, 1e-2, log=True), "updates": Int(1, 4)})
    trainer = _trainer()
    trainer.agent = trainer.agent.for_space(space)
    assert trainer.agent.config.max_updates == 4
    configs = [{"lr": 1e-3, "updates": 1}, {"lr": 1e-3, "updates": 4}, {"lr": 0.0, "updates": 2}]
    state = trainer.init(jax.random.PRNGKey(0), configs)
    state = trainer.train(state, 3 * TINY.batch_size)  # 24 transitions: past learning_starts
    programs = trainer._train.cache_size()
    other = [{"lr": 1e-2, "updates": 2}, {"lr": 1e-4, "updates": 3}, {"lr": 0.0, "updates": 4}]
    trainer.train(trainer.set_hparams(state, other), 3 * TINY.batch_size)
    assert trainer._train.cache_size() == programs
    np.testing.assert_array_equal(state.steps, [24.0] * 3)
    assert int(state.buffer.count[0]) == 24
    frozen = jax.tree.leaves(state.params)
    start = jax.tree.leaves(trainer.init(jax.random.PRNGKey(0), configs).params)
    for a, b in zip(frozen, start, strict=True):  # lr 0: member 2's weights never move
        np.testing.assert_array_equal(np.asarray(a)[2], np.asarray(b)[2])
        assert not np.array_equal(np.asarray(a)[0], np.asarray(b)[0])
    with pytest.raises(ConfigError, match=r"updates \[9, 9, 9\] outside 1..4"):
        trainer.set_hparams(state, [{"lr": 1e-3, "updates": 9}] * 3)


def test_a_masked_member_equals_one_whose_program_runs_its_own_count():
    agent_max = DQNAgent(TINY.with_overrides(max_updates=4), *_spaces(), obs_shape=None).for_space(
        SearchSpace({"lr": Float(1e-4, 1e-2), "updates": Int(1, 4)})
    )
    agent_own = DQNAgent(TINY.with_overrides(updates=2), *_spaces())
    member, rollout, last = _member(agent_own)
    tuned = member.replace(hparams={**member.hparams, "updates": jnp.float32(2)})
    a = agent_max.learn(tuned, rollout, last)
    b = agent_own.learn(member, rollout, last)
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


def _spaces():
    import gymnax

    env, params = gymnax.make("CartPole-v1")
    return env.action_space(params), env.observation_space(params)


def _member(agent: DQNAgent):
    """One member past ``learning_starts`` and a rollout ``[2, 4]`` to learn from."""
    key = jax.random.PRNGKey(3)
    obs = jax.random.normal(key, (TINY.num_envs, 4))
    member = agent.init_member(key, None, obs, jax.random.PRNGKey(4))
    member = agent.set_hparams(jax.tree.map(lambda x: x[None], member), [{"lr": 1e-3}])
    member = jax.tree.map(lambda x: x[0], member)
    k = jax.random.split(key, 4)
    rollout = Rollout(
        jax.random.normal(k[0], (2, 4, 4)),
        jax.random.randint(k[1], (2, 4), 0, 2),
        jax.random.normal(k[2], (2, 4)),
        jax.random.uniform(k[3], (2, 4)) < 0.2,
        None,
    )
    for _ in range(2):  # 16 transitions stored: updates run
        member = member.replace(buffer=agent.learn(member, rollout, obs).buffer)
    return member, rollout, obs


@pytest.mark.parametrize("clone_buffer", [True, False])
def test_a_clones_next_update_equals_its_donors_with_the_clones_hyperparameters(clone_buffer):
    config = TINY.with_overrides(clone_buffer=clone_buffer)
    trainer = _trainer(config, 2)
    state = trainer.init(jax.random.PRNGKey(1), [{"lr": 1e-3}, {"lr": 5e-3}])
    state = trainer.train(state, 3 * TINY.batch_size)
    new = [{"lr": 1e-3, "gamma": 0.9}, {"lr": 2e-4, "gamma": 0.95}]
    cloned = trainer.apply(
        trainer.set_hparams(state, [{"lr": 1e-3, "gamma": 0.99}] * 2),
        [Keep(0, new[0]), Clone(1, 0, new[1])],
    )
    one = lambda s, i: jax.tree.map(lambda x: x[i], s)  # noqa: E731
    clone, donor = one(cloned, 1), one(state, 0)
    for field in ("params", "target_params"):
        for x, y in zip(
            jax.tree.leaves(getattr(clone, field)),
            jax.tree.leaves(getattr(donor, field)),
            strict=True,
        ):
            np.testing.assert_array_equal(x, y)
    same_buffer = np.array_equal(clone.buffer.obs, donor.buffer.obs)
    assert same_buffer == clone_buffer
    # The donor with the clone's hyperparameters and key learns what the clone learns.
    as_clone = donor.replace(
        hparams=clone.hparams,
        opt_state=donor.opt_state._replace(hyperparams=clone.opt_state.hyperparams),
        key=clone.key,
        buffer=clone.buffer,
    )
    agent = trainer.agent
    _, rollout, last = _member(agent)
    a, b = agent.learn(clone, rollout, last), agent.learn(as_clone, rollout, last)
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_array_equal(x, y)
    assert float(clone.hparams["gamma"]) == pytest.approx(0.95)
    assert float(clone.opt_state.hyperparams["learning_rate"]) == pytest.approx(2e-4)


def test_the_agent_refuses_what_it_cannot_tune_or_take():
    agent = DQNAgent(TINY, *_spaces())
    with pytest.raises(ConfigError, match="dqn agent cannot tune"):
        agent.for_space(SearchSpace({"lr": Float(1e-4, 1e-3), "clip": Float(0.1, 0.3)}))
    with pytest.raises(ConfigError, match="needs 'lr'"):
        agent.for_space(SearchSpace({"tau": Float(0.1, 0.3)}))
    with pytest.raises(ConfigError, match=r"'gamma' must lie in \(0, 1\]"):
        agent.for_space(SearchSpace({"lr": Float(1e-4, 1e-3), "gamma": Float(0.9, 1.5)}))
    with pytest.raises(ConfigError, match="'updates' must be positive whole numbers"):
        agent.for_space(SearchSpace({"lr": Float(1e-4, 1e-3), "updates": Categorical([0.5, 2.0])}))
    with pytest.raises(ConfigError, match="needs an agent built for the search space"):
        _trainer().init(jax.random.PRNGKey(0), [{"lr": 1e-3, "updates": 2}] * 3)
    assert agent.for_space(default_space()) is agent  # nothing structural to change
    import gymnax

    env, params = gymnax.make("Pendulum-v1")
    with pytest.raises(ConfigError, match="discrete actions only"):
        DQNAgent(TINY, env.action_space(params), env.observation_space(params))
    with pytest.raises(ConfigError, match="the dqn agent takes a DQNConfig"):
        PopulationTrainer("cart_pole", "earth", tiny_ppo(), 2, agent="dqn")
    with pytest.raises(ConfigError, match="more than the buffer"):
        DQNConfig(num_envs=8, rollout_len=8, buffer_size=32)


def tiny_ppo():
    from tests.engine.helpers import tiny

    return tiny()


def test_a_diverged_dqn_member_scores_nan():
    trainer = _trainer(size=2)
    state = trainer.init(jax.random.PRNGKey(0), [{"lr": 1e-3}] * 2)
    broken = state.replace(params=jax.tree.map(lambda x: x.at[1].set(np.nan), state.params))
    rewards = trainer.evaluate(broken, jax.random.PRNGKey(1))
    assert np.isnan(rewards[1]) and np.isfinite(rewards[0])


def test_dqn_learns_cartpole_with_the_classic_preset():
    """Two members for 40k steps (about a minute): the good lr learns, lr 0 does not."""
    trainer = _trainer(DQN_PRESETS.make("classic"), 2)
    state = trainer.init(jax.random.PRNGKey(0), [{"lr": 1e-3}, {"lr": 0.0}])
    state = trainer.train(state, 40_000)
    rewards = trainer.evaluate(state, jax.random.PRNGKey(1))
    assert rewards[0] > 100 and rewards[1] < 30, rewards


def test_which_agents_train_an_env_and_a_dqn_run_from_the_command_line(tmp_path):
    import json

    from typer.testing import CliRunner

    from metapbt.cli import app
    from metapbt.engine import agents
    from metapbt.population.history import read_labels

    assert agents.for_env("cart_pole") == ["ppo", "dqn"]
    assert agents.for_env("pendulum") == ["ppo"]
    args = ["run", "--agent", "dqn", "--budget", "200", "--interval", "100", "--no-watchdog"]
    result = CliRunner().invoke(app, [*args, "--method", "pbt", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["agent"] == "dqn" and summary["preset"] == "classic"
    assert summary["preset_values"]["buffer_size"] == 50_000
    assert read_labels(tmp_path / "r" / "history.parquet") == {"agent": "dqn"}
    refused = CliRunner().invoke(app, [*args, "--env", "pendulum", "--out", str(tmp_path / "p")])
    assert refused.exit_code != 0 and "discrete actions only" in refused.output

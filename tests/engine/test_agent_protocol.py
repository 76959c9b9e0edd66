"""The Agent seam: a tiny REINFORCE agent (a linear softmax policy) through both trainers."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metapbt import Clone, Keep
from metapbt.engine import presets
from metapbt.engine.agent import Agent, Rollout
from metapbt.engine.factory import make_trainer
from metapbt.engine.host_trainer import HostPopulationTrainer
from metapbt.engine.trainer import PopulationTrainer
from metapbt.errors import ConfigError

LINE = "tests.envs.custom_envs:LINE"
ROLL = presets.make("fast", num_envs=8, rollout_len=40, minibatch_size=80, eval_episodes=4)


@partial(
    jax.tree_util.register_dataclass,
    data_fields=["w", "env_state", "obs", "key", "hparams"],
    meta_fields=[],
)
@dataclasses.dataclass(frozen=True)
class LinearState:
    w: jax.Array
    env_state: Any
    obs: jax.Array
    key: jax.Array
    hparams: dict[str, jax.Array]

    def replace(self, **changes: Any) -> LinearState:
        return dataclasses.replace(self, **changes)


class LinearReinforce:
    """REINFORCE with a linear softmax policy and a mean baseline; tunes ``lr`` only."""

    name = "linear-reinforce"
    tunable: Mapping[str, str] = {"lr": "gradient step size"}
    required = ("lr",)

    def __init__(self, obs_dim: int, actions: int) -> None:
        self.obs_dim, self.actions = obs_dim, actions

    def for_space(self, space: Any) -> LinearReinforce:
        self.check_names(space.names)
        return self

    def check_names(self, names: Sequence[str]) -> None:
        unknown = [n for n in names if n not in self.tunable]
        if unknown:
            raise ConfigError(f"the {self.name} agent cannot tune {unknown}")

    def init_member(self, key, env_state, obs, run_key) -> LinearState:
        w = jnp.zeros((self.obs_dim + 1, self.actions))
        return LinearState(w, env_state, obs, run_key, {"lr": jnp.float32(0.0)})

    def _logits(self, w, obs):
        return jnp.concatenate([obs, jnp.ones((*obs.shape[:-1], 1))], -1) @ w

    def act_params(self, state: LinearState):
        return state.w

    def act(self, w, obs, key):
        return jax.random.categorical(key, self._logits(w, obs)), None

    def learn(self, state: LinearState, rollout: Rollout, last_obs) -> LinearState:
        def backward(ret, step):
            reward, done = step
            ret = reward + ret * (1.0 - done)
            return ret, ret

        _, returns = jax.lax.scan(
            backward,
            jnp.zeros(rollout.reward.shape[1]),
            (rollout.reward, rollout.done.astype(jnp.float32)),
            reverse=True,
        )
        advantage = returns - returns.mean()

        def objective(w):
            logp = jax.nn.log_softmax(self._logits(w, rollout.obs))
            taken = jnp.take_along_axis(logp, rollout.action[..., None], -1)[..., 0]
            return jnp.mean(taken * advantage)

        grad = jax.grad(objective)(state.w)
        return state.replace(w=state.w + state.hparams["lr"] * grad)

    def eval_params(self, state):
        return state.w

    def eval_action(self, w, obs, key):
        return jax.random.categorical(key, self._logits(w, obs))

    def set_hparams(self, state, configs):
        values = jnp.asarray([float(c["lr"]) for c in configs], jnp.float32)
        return state.replace(hparams={"lr": values})

    def clone(self, state, index):
        return state.replace(w=state.w[index])


def _agent() -> Agent:
    return LinearReinforce(obs_dim=2, actions=3)


def test_a_second_agent_learns_through_the_jax_trainer():
    trainer = PopulationTrainer(LINE, "target=0.5", ROLL, 2, agent=_agent())
    state = trainer.init(jax.random.PRNGKey(0), [{"lr": 0.5}, {"lr": 0.0}])
    before = trainer.evaluate(state, jax.random.PRNGKey(1))
    state = trainer.train(state, 60 * ROLL.batch_size)
    after = trainer.evaluate(state, jax.random.PRNGKey(1))
    assert after[0] > before[0] + 5  # lr 0.5 learns
    assert after[1] == pytest.approx(before[1], abs=3)  # lr 0 stays a random walk
    np.testing.assert_array_equal(state.w[1], 0.0)


def test_clones_and_new_hyperparameters_go_through_the_agent_without_recompiling():
    trainer = PopulationTrainer(LINE, None, ROLL, 2, agent=_agent())
    state = trainer.init(jax.random.PRNGKey(0), [{"lr": 0.5}, {"lr": 0.1}])
    state = trainer.train(trainer.train(state, ROLL.batch_size), ROLL.batch_size)
    programs = trainer._train.cache_size()  # (the env's first reset state is weakly typed)
    assert not np.allclose(state.w[0], state.w[1])
    decisions = [Keep(0, {"lr": 0.5}), Clone(1, 0, {"lr": 0.3})]
    cloned = trainer.apply(state, decisions)
    np.testing.assert_array_equal(cloned.w[1], state.w[0])
    assert cloned.hparams["lr"].tolist() == pytest.approx([0.5, 0.3])
    trainer.train(cloned, ROLL.batch_size)
    assert trainer._train.cache_size() == programs  # a new lr did not recompile
    with pytest.raises(ConfigError, match="linear-reinforce agent cannot tune"):
        trainer.init(jax.random.PRNGKey(0), [{"lr": 0.1, "clip": 0.2}] * 2)
    with pytest.raises(ConfigError, match=r"needs \['lr'\].*linear-reinforce"):
        trainer.init(jax.random.PRNGKey(0), [{}, {}])


def test_a_second_agent_trains_on_the_host_trainer():
    trainer = HostPopulationTrainer("gymnasium:CartPole-v1", None, ROLL, 2, agent=_agent_4())
    state = trainer.init(jax.random.PRNGKey(0), [{"lr": 0.05}] * 2)
    state = trainer.train(state, 2 * ROLL.batch_size)
    assert np.all(np.asarray(state.w) != 0.0)
    assert np.all(np.isfinite(trainer.evaluate(state, jax.random.PRNGKey(1))))


def _agent_4() -> Agent:
    return LinearReinforce(obs_dim=4, actions=2)


def test_the_factory_passes_an_agent_on():
    trainer = make_trainer(LINE, None, ROLL, 2, agent=_agent())
    assert trainer.agent.name == "linear-reinforce"


def test_programs_of_a_users_env_or_agent_are_never_stored():
    """A stored program is keyed by our source and library versions, not by a user's code."""
    assert PopulationTrainer(LINE, None, ROLL, 2, agent=_agent())._train._owner is None
    assert PopulationTrainer(LINE, None, ROLL, 2)._train._owner is None
    assert PopulationTrainer("gymnax:CartPole-v1", None, ROLL, 2)._train._owner is not None
    assert PopulationTrainer("cart_pole", None, ROLL, 2)._train._owner is not None

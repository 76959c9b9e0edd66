"""What a population trainer asks of an agent: the `Agent` protocol.

A trainer decides where the environments step (inside one jitted program, or on the host); an
agent decides how a member acts and learns. The trainer holds a stacked ``[P]`` state whose
``env_state``, ``obs`` and ``key`` fields it owns; every other field belongs to the agent. Per
member, and vmapped by the trainer, an agent:

- starts a member (`Agent.init_member`) around its first observations;
- acts (`Agent.act`): an action and what learning needs of the step (PPO: the value and
  log-probability), from a key the trainer splits off and from what `Agent.act_params`
  takes of the member (PPO: the networks' parameters, not the optimiser state: a host trainer
  passes it to a jitted call every step);
- learns from one rollout ``[T, E]`` (`Agent.learn`);
- acts for evaluation from what `Agent.eval_params` returns (the policy alone);

and, on the whole population (not vmapped):

- writes each member's hyperparameters into the traced state (`Agent.set_hparams`),
  never recompiling: every tuned value is a traced leaf;
- copies donors into clones (`Agent.clone`);
- declares what it tunes (`Agent.tunable`) and the structural bounds a search space needs
  (`Agent.for_space`).

`PPOAgent` is the first implementation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from metapbt.population.space import SearchSpace


def write_hparams(state: Any, configs: Sequence[Mapping[str, Any]]) -> Any:
    """``state`` (stacked ``[P]``) with member ``i``'s values of ``configs[i]`` as traced leaves.

    ``lr`` goes into the optimiser state's injected hyperparameters
    (``optax.inject_hyperparams``); every other name into ``state.hparams``. For agents whose
    state has ``opt_state`` and ``hparams`` fields (PPO's and DQN's).
    """
    hparams = dict(state.hparams)
    for name in configs[0]:
        values = jnp.asarray([float(c[name]) for c in configs], jnp.float32)
        if name == "lr":
            # A new dict: the optimiser state's dict is shared with the caller's state.
            injected = {**state.opt_state.hyperparams, "learning_rate": values}
            state = state.replace(opt_state=state.opt_state._replace(hyperparams=injected))
        else:
            hparams[name] = values
    return state.replace(hparams=hparams)


class Rollout(NamedTuple):
    """One member's rollout, every field ``[T, E, ...]``.

    Attributes:
        obs: The observations the actions were taken in.
        action: The actions.
        reward: The rewards.
        done: 1 where the episode ended at this step (terminated or truncated).
        extras: What `Agent.act` returned beside each action.
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    done: jax.Array
    extras: Any


class Agent(Protocol):
    """A learner the population trainers drive (see the module docstring)."""

    name: str
    tunable: Mapping[str, str]
    required: tuple[str, ...]  # hyperparameters every member's first config must set

    def for_space(self, space: SearchSpace) -> Agent:
        """This agent with the structural bounds tuning ``space`` needs (itself if none).

        Raises:
            ConfigError: If ``space`` names a parameter it cannot tune, or values it cannot take.
        """
        ...

    def check_names(self, names: Sequence[str]) -> None:
        """Raise a ``ConfigError`` unless every name is one this agent can tune."""
        ...

    def init_member(
        self, key: jax.Array, env_state: Any, obs: jax.Array, run_key: jax.Array
    ) -> Any:
        """One member's state around its first observations ``obs [E, ...]`` (one member)."""
        ...

    def act_params(self, state: Any) -> Any:
        """What `act` needs of a member's state (stacked ``[P]`` as the state is)."""
        ...

    def act(self, params: Any, obs: jax.Array, key: jax.Array) -> tuple[jax.Array, Any]:
        """``(action [E, ...], extras)`` for one member's observations ``obs [E, ...]``."""
        ...

    def learn(self, state: Any, rollout: Rollout, last_obs: jax.Array) -> Any:
        """One member's state after learning from ``rollout`` (``last_obs [E, ...]`` follows)."""
        ...

    def eval_params(self, state: Any) -> Any:
        """What `eval_action` needs of a member (stacked ``[P]`` as the state is)."""
        ...

    def eval_action(self, params: Any, obs: jax.Array, key: jax.Array) -> jax.Array:
        """An evaluation action for one member's observations ``obs [N, ...]``."""
        ...

    def set_hparams(self, state: Any, configs: Sequence[Mapping[str, Any]]) -> Any:
        """The stacked state with member ``i``'s hyperparameters from ``configs[i]``."""
        ...

    def clone(self, state: Any, index: np.ndarray) -> Any:
        """The stacked state where member ``i`` takes what it learned from ``index[i]``."""
        ...

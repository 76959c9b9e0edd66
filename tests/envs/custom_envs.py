"""Small user environments for the env-source tests: one good, several that break the contract.

Imported by ``module:attr`` ids (``tests.envs.custom_envs:LINE``), as a user's own module would be.
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class LineParams:
    target: float = 0.5
    speed: float = 0.1
    max_steps_in_episode: int = 40


@struct.dataclass
class LineState:
    x: jax.Array
    time: int


class Line(environment.Environment):
    """Walk along [-1, 1] towards ``target`` (left, stay, right by ``speed``)."""

    context_bounds: ClassVar = {"target": (-1.0, 1.0), "speed": (0.01, 0.5)}

    @property
    def default_params(self) -> LineParams:
        return LineParams()

    def step_env(self, key, state, action, params):
        x = jnp.clip(state.x + (action - 1) * params.speed, -1.0, 1.0)
        state = LineState(x, state.time + 1)
        reward = 1.0 - jnp.abs(x - params.target)
        return self.get_obs(state, params), state, reward, jnp.array(False), {}

    def reset_env(self, key, params):
        state = LineState(jax.random.uniform(key, minval=-1.0, maxval=1.0), 0)
        return self.get_obs(state, params), state

    def get_obs(self, state, params=None, key=None):
        return jnp.stack([state.x, jnp.asarray(params.target, jnp.float32)])

    def action_space(self, params=None):
        return spaces.Discrete(3)

    def observation_space(self, params):
        return spaces.Box(-1.0, 1.0, (2,))


LINE = Line()


def make_line() -> Line:
    return Line()


def make_line_and_params() -> tuple[Line, LineParams]:
    return Line(), LineParams(target=-0.5)


class FiveValues(Line):
    """The gymnax < 1.0 step: five values."""

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, _, info = super().step(key, state, action, params)
        return obs, state, reward, terminated, info


class WrongShape(Line):
    """Declares observations of shape (3,) and returns (2,)."""

    def observation_space(self, params):
        return spaces.Box(-1.0, 1.0, (3,))


class NoLimit(Line):
    """Params without ``max_steps_in_episode``."""

    @property
    def default_params(self) -> Any:
        return {"target": 0.5, "speed": 0.1}


class StringParams(Line):
    @property
    def default_params(self) -> Any:
        return "target=0.5"


class PythonBranch(Line):
    """Branches in Python on a traced value: fails when traced."""

    def step_env(self, key, state, action, params):
        if state.x > 0:
            return super().step_env(key, state, action, params)
        return super().step_env(key, state, action, params)


FIVE_VALUES = FiveValues()
WRONG_SHAPE = WrongShape()
NO_LIMIT = NoLimit()
STRING_PARAMS = StringParams()
PYTHON_BRANCH = PythonBranch()
NOT_AN_ENV = 42


def needs_an_argument(size: int) -> Line:
    return Line()


def _missing_dependency_env():
    import gymnasium

    class NeedsMissing(gymnasium.Env):
        def __init__(self):
            raise ImportError("No module named 'imageio'")

    return NeedsMissing


NEEDS_MISSING = _missing_dependency_env()

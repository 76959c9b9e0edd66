"""DQN presets: typed, frozen configs of the DQN agent, chosen by name.

``classic`` is rejax's DQN configuration for gymnax's CartPole (10 environments, a 50k buffer
filled with 5k transitions first, batches of 100, 5 gradient steps per 10 environment steps, a
Polyak target at tau 0.02, a dueling head, epsilon from 1 to 0.05 over half of 100k steps),
so that the engine's DQN can be set beside rejax's with the same settings. ``minatar`` is the
same learner on images (the CNN torso of `metapbt.engine.networks`) with MinAtar's usual
100k buffer and a longer exploration horizon.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from metapbt._registry import Registry
from metapbt.engine.networks import ACTIVATIONS
from metapbt.engine.presets import CLASSIC_CONTROL, GENERIC, PresetUse
from metapbt.errors import ConfigError


@dataclass(frozen=True)
class DQNConfig:
    """Structural (compile-time) DQN settings of every member.

    Tuned hyperparameters (`metapbt.engine.dqn_agent.TUNABLE`) are per-member traced
    values of the train state; ``gamma``, ``tau``, ``eps_final``, ``eps_decay`` and ``updates``
    here are only their values when they are not tuned.

    Args:
        num_envs: Parallel environments per member.
        rollout_len: Steps per environment per iteration (batch = ``num_envs * rollout_len``).
        buffer_size: Transitions each member's replay buffer holds (a ring).
        learning_starts: Transitions a member's buffer holds before its first gradient step.
        sample_size: Transitions sampled per gradient step.
        updates: Gradient steps per iteration.
        max_updates: The most gradient steps a member may take per iteration when ``updates``
            is tuned (the program runs this many and masks each member's steps beyond its
            own); ``None``: ``updates`` is not tuned.
        hidden: Hidden layer sizes of the Q-network.
        activation: A name in `metapbt.engine.networks.ACTIVATIONS`.
        dueling: A dueling head (value + centred advantages).
        torso: ``"mlp"``, ``"cnn"`` or ``None`` (chosen by the observation's shape).
        gamma: Discount factor.
        tau: Polyak rate of the target network per gradient step (1: a hard copy each step).
        eps_start: Exploration rate at the first step.
        eps_final: Exploration rate after the decay.
        eps_decay: Fraction of ``explore_steps`` over which epsilon falls linearly.
        explore_steps: The horizon ``eps_decay`` is a fraction of (the preset's run budget).
        max_grad_norm: Global gradient-norm clip; ``None``: off.
        clone_buffer: A clone takes its donor's replay buffer with its weights (else it keeps
            its own experience).
        eval_episodes: Evaluation episodes per member at each sync point.
    """

    num_envs: int = 10
    rollout_len: int = 1
    buffer_size: int = 50_000
    learning_starts: int = 5_000
    sample_size: int = 100
    updates: int = 5
    max_updates: int | None = None
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "swish"
    dueling: bool = True
    torso: str | None = None
    gamma: float = 0.99
    tau: float = 0.02
    eps_start: float = 1.0
    eps_final: float = 0.05
    eps_decay: float = 0.5
    explore_steps: int = 100_000
    max_grad_norm: float | None = 10.0
    clone_buffer: bool = True
    eval_episodes: int = 10

    def __post_init__(self) -> None:
        for name in ("num_envs", "rollout_len", "buffer_size", "sample_size", "updates"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.eval_episodes < 1 or self.learning_starts < 0 or self.explore_steps < 0:
            raise ConfigError("eval_episodes must be >= 1; learning_starts, explore_steps >= 0")
        if self.batch_size > self.buffer_size:
            raise ConfigError(
                f"one iteration adds {self.batch_size} transitions, more than the buffer's "
                f"{self.buffer_size}"
            )
        if self.max_updates is not None and self.max_updates < 1:
            raise ConfigError(f"max_updates must be at least 1, got {self.max_updates}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}"
            )
        if self.torso not in (None, "mlp", "cnn"):
            raise ConfigError(f"torso must be 'mlp', 'cnn' or None, got {self.torso!r}")
        for name in ("tau", "eps_start", "eps_final", "eps_decay"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.gamma <= 1.0:
            raise ConfigError(f"gamma must lie in (0, 1], got {self.gamma}")

    @property
    def batch_size(self) -> int:
        """Environment steps per iteration per member."""
        return self.num_envs * self.rollout_len

    def with_overrides(self, **changes: Any) -> DQNConfig:
        """A validated copy with some fields changed (values as read from a file: any type)."""
        return replace(self, **changes)


DQN_PRESETS: Registry[DQNConfig] = Registry("DQN preset")
"""Factories take the environment id (``env``) as PPO's do; none of them reads it yet."""

USES = {
    "classic": PresetUse(100_000, 10_000, (CLASSIC_CONTROL, GENERIC)),
    "minatar": PresetUse(1_000_000, 50_000, (GENERIC,)),
}
"""What each DQN preset is for: a run's default budget and interval, and its families."""


@DQN_PRESETS.register("classic")
def _classic(env: str | None = None) -> DQNConfig:
    """The CartPole DQN of rejax (see the module docstring); a run of 100k steps."""
    return DQNConfig()


@DQN_PRESETS.register("minatar")
def _minatar(env: str | None = None) -> DQNConfig:
    """``classic`` on images: the CNN torso, a 100k buffer, epsilon over 10% of 1M steps."""
    return DQNConfig(
        buffer_size=100_000,
        sample_size=64,
        updates=2,
        hidden=(128,),
        activation="relu",
        dueling=False,
        torso="cnn",
        eps_final=0.01,
        eps_decay=0.1,
        explore_steps=1_000_000,
        tau=0.005,
    )

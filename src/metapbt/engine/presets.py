"""PPO presets: typed, frozen configs chosen by name (and, for some, by environment).

A preset factory takes the environment id (``env``, or ``None`` when unknown); most ignore it.
``classic`` is the exception: ``fast`` plus the per-environment settings in
`CLASSIC_SETTINGS`, measured with ``metapbt calibrate`` (docs/results/meta-pb2.md).

Every preset also says what it is for (`PresetUse`, `use`): the environment
families it is meant for and a run's default length under it (budget and sync interval, whole
batches of the preset). Those defaults are the same for every environment of its families: no
preset's batch depends on the environment.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from metapbt import envs
from metapbt._registry import Registry
from metapbt.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PPOConfig:
    """Structural (compile-time) PPO settings of every member.

    Tuned hyperparameters (`metapbt.engine.tuning.TUNABLE`) are per-member traced values
    of the train state; ``ent_coef``, ``gamma`` and ``epochs`` here are only their values when
    they are not tuned (``minibatch_size`` likewise for ``minibatches``).

    Args:
        num_envs: Parallel environments per member.
        rollout_len: Steps per environment per iteration (batch = ``num_envs * rollout_len``).
        epochs: Passes over the batch per iteration.
        minibatch_size: Samples per gradient step.
        hidden: Hidden layer sizes of the (separate) policy and value networks.
        activation: ``"tanh"`` or ``"relu"``.
        gamma: Discount factor.
        vf_coef: Value-loss weight.
        ent_coef: Entropy bonus weight.
        vf_clip: Clip of the squared value error (RLlib's ``vf_clip_param``); ``None``: off.
        kl_coeff: Initial KL-penalty coefficient (0 disables the penalty).
        kl_target: Target KL of the adaptive coefficient.
        max_grad_norm: Global gradient-norm clip; ``None``: off.
        reward_scale: Rewards are multiplied by this before GAE (training only; evaluation
            returns are the environment's own). Large per-step rewards, such as Pendulum's
            (down to -16 a step), otherwise give value errors whose gradients dominate the
            shared gradient-norm clip and starve the policy.
        scale_obs: Map each observation dimension with finite bounds in the environment's
            observation space onto ``[-1, 1]`` before the networks (a fixed transform, not a
            running normalisation; unbounded dimensions pass unchanged). MountainCar's velocity
            (at most 0.07) is otherwise too small a signal to learn from.
        normalize_obs: Standardise observations with each member's running mean and variance
            of every observation it trained on (clipped to +-10; a clone takes its donor's
            statistics with its weights). Off by default, as in the reference (RLlib's
            ``NoFilter``).
        eval_episodes: Evaluation episodes per member at each sync point.
        max_epochs: The most passes over the batch a member may make when ``epochs`` is
            tuned (the program runs this many and masks each member's passes beyond its own
            count); ``None``: ``epochs`` is not tuned. Set from a search space by
            `metapbt.engine.tuning.for_space`.
        minibatch_chunks: The batch is cut into this many equal chunks when ``minibatches``
            is tuned (a member with ``k`` minibatches takes one optimiser step per
            ``minibatch_chunks / k`` chunks); ``None``: the preset's ``minibatch_size``.
        torso: The networks' torso: ``"mlp"`` (an image is flattened first) or ``"cnn"``
            (images only); ``None``: chosen by the observation's shape
            (`metapbt.engine.networks.torso_for`: a CNN for images ``[H, W, C]``).
    """

    num_envs: int = 16
    rollout_len: int = 125
    epochs: int = 4
    minibatch_size: int = 500
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    gamma: float = 0.99
    vf_coef: float = 0.5
    ent_coef: float = 0.01
    vf_clip: float | None = None
    kl_coeff: float = 0.0
    kl_target: float = 0.01
    max_grad_norm: float | None = 0.5
    reward_scale: float = 1.0
    scale_obs: bool = False
    normalize_obs: bool = False
    eval_episodes: int = 10
    max_epochs: int | None = None
    minibatch_chunks: int | None = None
    torso: str | None = None

    def __post_init__(self) -> None:
        for name in ("num_envs", "rollout_len", "epochs", "minibatch_size", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.batch_size % self.minibatch_size:
            raise ConfigError(
                f"minibatch_size {self.minibatch_size} must divide the batch "
                f"({self.num_envs} envs x {self.rollout_len} steps = {self.batch_size})"
            )
        if self.max_epochs is not None and self.max_epochs < 1:
            raise ConfigError(f"max_epochs must be at least 1, got {self.max_epochs}")
        if self.minibatch_chunks is not None and (
            self.minibatch_chunks < 1 or self.batch_size % self.minibatch_chunks
        ):
            raise ConfigError(
                f"minibatch_chunks {self.minibatch_chunks} must divide the batch "
                f"({self.num_envs} envs x {self.rollout_len} steps = {self.batch_size})"
            )
        if not self.reward_scale > 0:
            raise ConfigError(f"reward_scale must be positive, got {self.reward_scale}")
        if self.torso not in (None, "mlp", "cnn"):
            raise ConfigError(f"torso must be 'mlp', 'cnn' or None, got {self.torso!r}")
        if self.activation not in ("tanh", "relu"):
            raise ConfigError(f"activation must be 'tanh' or 'relu', got {self.activation!r}")

    @property
    def batch_size(self) -> int:
        """Environment steps per iteration per member."""
        return self.num_envs * self.rollout_len

    def with_overrides(self, **changes: Any) -> PPOConfig:
        """A validated copy with some fields changed (values as read from a file: any type)."""
        return replace(self, **changes)


PRESETS: Registry[PPOConfig] = Registry("preset")

CLASSIC_CONTROL, BRAX, BOX2D, GENERIC = "classic_control", "brax", "box2d", "generic"
"""Environment families (each env spec's ``family``); ``generic``: an environment from a source
(``gymnax:``, ``gymnasium:``, a user's) that no preset was calibrated for."""

KINDS = {
    CLASSIC_CONTROL: "a classic-control env",
    BRAX: "a Brax robot",
    BOX2D: "a Box2D env",
    GENERIC: "an environment no preset was calibrated for",
}
"""How an error names each family."""

RECOMMENDED = {CLASSIC_CONTROL: "classic", BRAX: "brax-fast", BOX2D: "box2d", GENERIC: "fast"}
"""The preset an error suggests for each family (a run's preset when none is given)."""

NOT_BRAX = (CLASSIC_CONTROL, BOX2D, GENERIC)
"""The families of every preset but the Brax ones: LunarLander's observations and discrete
actions are classic-control-like (``classic``, which equals ``fast`` there, and ``box2d`` are
run on it), and ``box2d`` is ``fast`` with a larger batch. An environment we did not calibrate
gets ``fast`` by default (a run says so: `warn_uncalibrated`)."""


@dataclass(frozen=True)
class PresetUse:
    """What a preset is meant for, next to its PPO settings.

    Args:
        budget: A run's default environment steps per member (a multiple of ``interval``).
        interval: A run's default steps per member between sync points (a multiple of the
            preset's batch).
        families: The environment families (each env spec's ``family``) it is meant for.
    """

    budget: int
    interval: int
    families: tuple[str, ...]

    def __post_init__(self) -> None:
        if not 1 <= self.interval <= self.budget or self.budget % self.interval:
            raise ConfigError(
                f"a preset's default budget ({self.budget}) must be a positive multiple of "
                f"its default interval ({self.interval})"
            )
        unknown = set(self.families) - set(KINDS)
        if unknown or not self.families:
            raise ConfigError(f"families must be some of {list(KINDS)}, got {self.families}")


_USES: dict[str, PresetUse] = {}


def _preset(
    name: str, budget: int, interval: int, families: tuple[str, ...]
) -> Callable[[Callable[..., PPOConfig]], Callable[..., PPOConfig]]:
    """Register a preset factory under ``name`` with what it is for (`PresetUse`)."""
    preset_use = PresetUse(budget, interval, families)

    def decorator(factory: Callable[..., PPOConfig]) -> Callable[..., PPOConfig]:
        registered = PRESETS.register(name)(factory)
        _USES[name] = preset_use
        return registered

    return decorator


# Defaults of the classic-control presets: the reference protocol (Meta-PB2's classic control,
# studies/classic_control*.toml): 600k steps per member, a sync point every 40k (15 rounds);
# 40k is whole batches of all four (2000: 20 iterations, 20,000: 2, 1000: 40).
@_preset("fast", budget=600_000, interval=40_000, families=NOT_BRAX)
def _fast(env: str | None = None) -> PPOConfig:
    """Small networks, few epochs, many environments: for quick use (``classic`` builds on it)."""
    return PPOConfig()


@_preset("paper", budget=600_000, interval=40_000, families=NOT_BRAX)
def _paper(env: str | None = None) -> PPOConfig:
    """As close as practical to the reference's RLlib PPO (batch 20k, 30 epochs, mb 128)."""
    return PPOConfig(
        num_envs=100,
        rollout_len=200,
        epochs=30,
        minibatch_size=125,
        hidden=(256, 256),
        activation="tanh",
        gamma=0.99,
        vf_coef=1.0,
        ent_coef=0.0,
        vf_clip=10.0,
        kl_coeff=0.2,
        kl_target=0.01,
        max_grad_norm=None,
    )


@_preset("paper-1k", budget=600_000, interval=40_000, families=NOT_BRAX)
def _paper_1k(env: str | None = None) -> PPOConfig:
    """``paper`` with a 1000-step batch: the reference README example's setting."""
    return replace(_paper(env), num_envs=5, rollout_len=200)


# LunarLander's protocol in studies/metapbt_repro.toml: a sync point every 52k steps (13 batches
# of 4000: the reference's 50k in whole batches), 520k per member (10 rounds) instead of the
# reference's 1M to fit a CPU; calibrated there (the best fixed configuration reaches 144 at
# 500k, 245 at 1M, with a wide spread at both).
@_preset("box2d", budget=520_000, interval=52_000, families=NOT_BRAX)
def _box2d(env: str | None = None) -> PPOConfig:
    """``fast`` networks with the reference's Box2D batch of 4000 and 10 epochs (LunarLander).

    On LunarLander ``fast`` (batch 2000, 4 epochs) stalls near a return of 0 after 400k steps
    per member; this preset's best member passes 200 (solved) by then.
    """
    return PPOConfig(num_envs=16, rollout_len=250, epochs=10, minibatch_size=500)


# studies/brax_learning.toml's protocol: 1,024,000 steps per member (1000 batches of 1024), a
# sync point every 102,400 (10 rounds), under which eight of the nine robots learn
# (docs/guides/brax.md); minutes per run on CPU for most robots.
@_preset("brax-fast", budget=1_024_000, interval=102_400, families=(BRAX,))
def _brax_fast(env: str | None = None) -> PPOConfig:
    """Brax on CPU in minutes: batch 1024 (16 envs x 64 steps), 4 epochs, no entropy bonus.

    Inverted pendulum learns with it (docs/guides/brax.md); 4 evaluation episodes of up to 1000
    steps.
    """
    return PPOConfig(
        num_envs=16, rollout_len=64, epochs=4, minibatch_size=256, ent_coef=0.0, eval_episodes=4
    )


# brax-fast's (the humanoid's normalisation check in docs/guides/brax.md ran with them).
@_preset("brax-fast-norm", budget=1_024_000, interval=102_400, families=(BRAX,))
def _brax_fast_norm(env: str | None = None) -> PPOConfig:
    """``brax-fast`` with running observation normalisation (``normalize_obs``).

    Not needed by the robots that learn under ``brax-fast`` in 1M steps, and not enough for
    the humanoid: with or without it, its best return stays near 500 (docs/guides/brax.md).
    """
    return replace(_brax_fast(env), normalize_obs=True)


# The reference's Brax protocol (studies/brax.toml): 3M steps per member, a sync point every
# 200k (15 rounds of 8 batches of 25,000).
@_preset("brax-paper", budget=3_000_000, interval=200_000, families=(BRAX,))
def _brax_paper(env: str | None = None) -> PPOConfig:
    """The reference's Brax PPO: ``paper`` with a batch of 25,000 (125 envs x 200 steps).

    30 epochs, minibatch 125 (the divisor of 25,000 nearest RLlib's 128), 256x256 tanh, KL
    penalty, no entropy bonus.
    """
    return replace(_paper(env), num_envs=125, rollout_len=200, minibatch_size=125)


CLASSIC_SETTINGS: dict[str, dict[str, object]] = {
    "mountain_car": {"scale_obs": True},
    "pendulum": {"gamma": 0.95, "reward_scale": 0.1, "ent_coef": 0.0},
}
"""What ``classic`` changes from ``fast`` per environment. Measured over 30 random
configurations, 600k steps (``metapbt calibrate``): with ``fast``, no MountainCar configuration
left -200 and Pendulum's best was -923; with these, the best reach -115 and -141. Scaling the
observations hurt Acrobot and Pendulum, so it is not applied to them."""


# fast's: the reference protocol. Committed results and studies rely on 600k / 40k.
@_preset("classic", budget=600_000, interval=40_000, families=NOT_BRAX)
def _classic(env: str | None = None) -> PPOConfig:
    """``fast`` with per-environment settings under which classic control is learnable.

    The default, and the Meta-PB2 comparison's protocol on CPU: one run costs what a ``fast``
    run costs, and equals one on CartPole, Acrobot and LunarLander.
    """
    return _fast(env).with_overrides(**CLASSIC_SETTINGS.get(env or "", {}))


def make(name: str, env: str | None = None, **overrides: object) -> PPOConfig:
    """The preset ``name`` for environment ``env``, optionally with fields overridden.

    Raises:
        UnknownNameError: On an unknown preset.
    """
    config = PRESETS.make(name, env=env)
    return config.with_overrides(**overrides) if overrides else config


def use(name: str) -> PresetUse:
    """What the preset ``name`` is for: its families and a run's default budget and interval.

    Raises:
        UnknownNameError: On an unknown preset (the message lists the known ones).
    """
    return _USES[PRESETS.check(name)]


def for_env(env: str) -> list[str]:
    """The presets meant for ``env``, the one suggested for its family first.

    The first is a run's preset when none is given (``metapbt run --env hopper`` trains with
    ``brax-fast``, ``--env lunar_lander`` with ``box2d``).
    """
    family = envs.spec(env).family
    meant = [name for name in PRESETS.names() if family in _USES[name].families]
    return sorted(meant, key=lambda name: name != RECOMMENDED[family])


def unsuited(name: str, env: str) -> str | None:
    """Why the preset ``name`` does not suit ``env``, naming the ones that do; ``None`` if it does.

    Brax robots take the Brax presets and every other environment the others: a classic
    preset's entropy bonus and ten 1000-step evaluation episodes do not suit a robot, nor the
    Brax presets' four evaluation episodes and missing entropy bonus a discrete task. Such a
    pair still trains (a run warns): every env x preset pair is a valid run.

    Raises:
        UnknownNameError: On an unknown preset or environment.
    """
    family = envs.spec(env).family
    if family in use(name).families:
        return None
    best, *others = for_env(env)
    also = f" (or {', '.join(others)})" if others else ""
    return (
        f"the {name!r} preset is not meant for {env} ({KINDS[family]}): the {best!r} "
        f"preset{also} is"
    )


@functools.cache
def warn_uncalibrated(env: str) -> None:
    """Log once per env in a process that ``env``'s default preset was not calibrated for it."""
    if envs.spec(env).family == GENERIC:
        logger.warning(
            "no preset was calibrated for %s: training with %r, the default for such "
            "environments (choose one with --preset; `metapbt calibrate --env %s` tells "
            "whether a task learns and depends on its hyperparameters)",
            env,
            RECOMMENDED[GENERIC],
            env,
        )


@functools.cache
def warn_unsuited(name: str, env: str) -> None:
    """Log `unsuited`'s reason once per (preset, env) in a process."""
    reason = unsuited(name, env)
    if reason is not None:
        logger.warning("%s; training with %r as asked", reason, name)

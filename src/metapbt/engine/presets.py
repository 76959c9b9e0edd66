"""PPO presets: typed, frozen configs chosen by name (and, for some, by environment).

A preset factory takes the environment id (``env``, or ``None`` when unknown); most ignore it.
``classic`` is the exception: ``fast`` plus the per-environment settings in
:data:`CLASSIC_SETTINGS`, measured with ``metapbt calibrate`` (README: "Reproducing Meta-PB2").
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from metapbt._registry import Registry
from metapbt.errors import ConfigError


@dataclass(frozen=True)
class PPOConfig:
    """Structural (compile-time) PPO settings of every member.

    Tuned hyperparameters (``lr``, ``lambda``, ``clip``, ``ent_coef``) are per-member traced
    values of the train state; ``ent_coef`` here is only its value when it is not tuned.

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

    def __post_init__(self) -> None:
        for name in ("num_envs", "rollout_len", "epochs", "minibatch_size", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.batch_size % self.minibatch_size:
            raise ConfigError(
                f"minibatch_size {self.minibatch_size} must divide the batch "
                f"({self.num_envs} envs x {self.rollout_len} steps = {self.batch_size})"
            )
        if not self.reward_scale > 0:
            raise ConfigError(f"reward_scale must be positive, got {self.reward_scale}")
        if self.activation not in ("tanh", "relu"):
            raise ConfigError(f"activation must be 'tanh' or 'relu', got {self.activation!r}")

    @property
    def batch_size(self) -> int:
        """Environment steps per iteration per member."""
        return self.num_envs * self.rollout_len

    def with_overrides(self, **changes: object) -> PPOConfig:
        """A validated copy with some fields changed."""
        return replace(self, **changes)


PRESETS: Registry[PPOConfig] = Registry("preset")


@PRESETS.register("fast")
def _fast(env: str | None = None) -> PPOConfig:
    """Small networks, few epochs, many environments: for quick use (``classic`` builds on it)."""
    return PPOConfig()


@PRESETS.register("paper")
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


@PRESETS.register("paper-1k")
def _paper_1k(env: str | None = None) -> PPOConfig:
    """``paper`` with a 1000-step batch: the reference README example's setting."""
    return replace(_paper(env), num_envs=5, rollout_len=200)


@PRESETS.register("box2d")
def _box2d(env: str | None = None) -> PPOConfig:
    """``fast`` networks with the reference's Box2D batch of 4000 and 10 epochs (LunarLander).

    On LunarLander ``fast`` (batch 2000, 4 epochs) stalls near a return of 0 after 400k steps
    per member; this preset's best member passes 200 (solved) by then.
    """
    return PPOConfig(num_envs=16, rollout_len=250, epochs=10, minibatch_size=500)


@PRESETS.register("brax-fast")
def _brax_fast(env: str | None = None) -> PPOConfig:
    """Brax on CPU in minutes: batch 1024 (16 envs x 64 steps), 4 epochs, no entropy bonus.

    Inverted pendulum learns with it (README: Brax); 4 evaluation episodes of up to 1000 steps.
    """
    return PPOConfig(
        num_envs=16, rollout_len=64, epochs=4, minibatch_size=256, ent_coef=0.0, eval_episodes=4
    )


@PRESETS.register("brax-fast-norm")
def _brax_fast_norm(env: str | None = None) -> PPOConfig:
    """``brax-fast`` with running observation normalisation (``normalize_obs``).

    Not needed by the robots that learn under ``brax-fast`` in 1M steps, and not enough for
    the humanoid: with or without it, its best return stays near 500 (README: Brax).
    """
    return replace(_brax_fast(env), normalize_obs=True)


@PRESETS.register("brax-paper")
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


@PRESETS.register("classic")
def _classic(env: str | None = None) -> PPOConfig:
    """``fast`` with per-environment settings under which classic control is learnable.

    The default, and the Meta-PB2 comparison's protocol on CPU: one run costs what a ``fast``
    run costs, and equals one on CartPole, Acrobot and LunarLander.
    """
    return replace(_fast(env), **CLASSIC_SETTINGS.get(env or "", {}))  # type: ignore[arg-type]


def make(name: str, env: str | None = None, **overrides: object) -> PPOConfig:
    """The preset ``name`` for environment ``env``, optionally with fields overridden."""
    config = PRESETS.make(name, env=env)
    return config.with_overrides(**overrides) if overrides else config

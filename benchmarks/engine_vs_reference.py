"""Our population trainer beside rejax's PPO (or DQN), the same learner on the same machine.

    python benchmarks/engine_vs_reference.py [--env cart_pole] [--members 1 4] [--repeats 5]
    python benchmarks/engine_vs_reference.py --env inverted_pendulum --iterations 20
    python benchmarks/engine_vs_reference.py --agent dqn [--iterations 500]

rejax (``pip install -e ".[bench]"``; Liesen et al., 2024) is a maintained public JAX PPO in
the style of purejaxrl: its ``train_iteration`` (rollout, GAE, epochs of minibatch steps)
jitted and vmapped over seeds, as its authors run it. Both sides do the same work per
iteration: the preset's environments, rollout length, epochs and minibatches (``classic`` for
CartPole, ``brax-fast`` for Brax), separate 64-64 tanh actor and critic networks, Adam, the
same learning rate, discount, GAE lambda, clip and loss weights, and the same environment
(rejax takes a gymnax environment object; a thin adapter turns gymnax 1.x's 6-value ``step``
into the 5 values rejax 0.1.3 unpacks). Where the two PPOs differ, none of it much in compute:
rejax clips each gradient element to ``max_grad_norm`` (we clip the global norm), clips its
value loss, steps separate Adams for actor and critic, and has no KL term (ours computes one
even at coefficient 0); presets' ``reward_scale`` and ``scale_obs`` are ours alone.
Host-stepped environments (LunarLander) have no rejax counterpart and are refused.

With ``--agent dqn`` both sides run double DQN with the ``classic`` DQN preset, which is
rejax's own CartPole configuration (10 environments, one step each per iteration, a 50k buffer,
batches of 100, 5 gradient steps per iteration, a dueling 64-64 swish Q-network, Polyak 0.98,
Adam at 1e-3): the buffer fills for ``learning_starts`` transitions first, lowered here to
1000 on both sides so the warm-up call passes it and every timed iteration updates (rejax skips
its updates before the fill; ours computes them masked). Differences: our target network
follows each gradient step (rejax's each iteration) and we clip the global gradient norm
(rejax each element); neither is much compute.

Per side and member count: one warm-up call (compiling, then training once: reported apart
as ``compile_s``), then ``--repeats`` timed calls of ``--iterations`` training iterations each,
alternating between the sides (a shared virtual machine has slow spells of tens of percent;
alternating puts them on both sides); env steps per second
are members x iterations x batch / seconds, the median over the repeats. Prints the device and
the ratio (ours / rejax) and XLA's cost analysis of one iteration per side (flops and bytes
accessed: the same work, or not), writes benchmarks/results/engine_vs_reference_<env>.json. Runs
unchanged on a GPU (``jax.devices()`` decides). Measure on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import jax
import numpy as np

from metapbt.engine import presets
from metapbt.engine.dqn_presets import DQN_PRESETS, DQNConfig
from metapbt.engine.factory import make_trainer

from _common import median, write


class FiveTuple:
    """Our gymnax environment as rejax 0.1 expects one: ``step`` returns 5 values.

    gymnax 1.x (ours) returns ``(obs, state, reward, terminated, truncated, info)``; rejax
    0.1.3 unpacks ``(obs, state, reward, done, info)``. ``done`` is either ending, as our
    trainer treats truncation. Everything else is the environment's own, so both sides step
    the same environment (our contexts' defaults: Earth gravity).
    """

    def __init__(self, env: Any, params: Any) -> None:
        self._env, self.default_params = env, params

    def step(self, key, state, action, params=None):
        obs, state, reward, term, trunc, info = self._env.step(key, state, action, params)
        return obs, state, reward, jax.numpy.logical_or(term, trunc), info

    def __deepcopy__(self, memo: dict) -> FiveTuple:
        """The environment is stateless: rejax's deep copy of its config shares it."""
        return self

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # copies (rejax deep-copies its config) look these up first
            raise AttributeError(name)
        return getattr(self._env, name)


HPARAMS = {"lr": 3e-4, "lambda": 0.95, "clip": 0.2}
"""Every member's tuned values, on both sides."""


def timed(sides: dict[str, tuple[Any, Any]], repeats: int) -> dict[str, tuple[float, list[float]]]:
    """Per side: (seconds of a first call, compiling and training once; [seconds of later calls]).

    ``sides`` maps a name to ``(step, state)``. After each side's first call the timed calls
    alternate between the sides, so that a slow spell of a shared machine falls on both.
    """
    states = {name: state for name, (_, state) in sides.items()}
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(1 + repeats):
        for name, (step, _) in sides.items():
            start = time.perf_counter()
            states[name] = jax.block_until_ready(step(states[name]))
            times[name].append(time.perf_counter() - start)
    return {name: (t[0], t[1:]) for name, t in times.items()}


DQN_LR = 1e-3
"""Every DQN member's learning rate, on both sides (rejax's CartPole value)."""


def ours(env: str, config: Any, members: int, iterations: int):
    """(step, state, one iteration) of our trainer: a step trains ``iterations`` iterations."""
    dqn = isinstance(config, DQNConfig)
    trainer = make_trainer(env, None, config, members, agent="dqn" if dqn else None)
    hparams = {"lr": DQN_LR} if dqn else HPARAMS
    state = trainer.init(jax.random.PRNGKey(0), [dict(hparams) for _ in range(members)])
    return (
        lambda s: trainer.train(s, iterations * config.batch_size),
        state,
        lambda s: trainer.train(s, config.batch_size),
    )


def rejax_ppo(env: str, config: presets.PPOConfig, members: int, iterations: int):
    """(step, state, one iteration) of rejax's PPO, vmapped over seeds."""
    from rejax import PPO

    from metapbt import envs

    wrapped = FiveTuple(*envs.make(env, None))
    algo = PPO.create(
        env=wrapped,
        env_params=wrapped.default_params,
        num_envs=config.num_envs,
        num_steps=config.rollout_len,
        num_epochs=config.epochs,
        num_minibatches=config.batch_size // config.minibatch_size,
        learning_rate=HPARAMS["lr"],
        max_grad_norm=config.max_grad_norm or float("inf"),
        gamma=config.gamma,
        gae_lambda=HPARAMS["lambda"],
        clip_eps=HPARAMS["clip"],
        ent_coef=config.ent_coef,
        vf_coef=config.vf_coef,
        total_timesteps=iterations * config.batch_size,
        eval_freq=iterations * config.batch_size,
        skip_initial_evaluation=True,
        agent_kwargs={"activation": "tanh", "hidden_layer_sizes": config.hidden},
    )

    def train(ts):
        return jax.lax.fori_loop(0, iterations, lambda _, t: algo.train_iteration(t), ts)

    ts = jax.vmap(algo.init_state)(jax.random.split(jax.random.PRNGKey(0), members))
    return jax.jit(jax.vmap(train)), ts, jax.vmap(algo.train_iteration)


def rejax_dqn(env: str, config: DQNConfig, members: int, iterations: int):
    """(step, state, one iteration) of rejax's DQN, vmapped over seeds."""
    from rejax import DQN

    from metapbt import envs

    wrapped = FiveTuple(*envs.make(env, None))
    algo = DQN.create(
        env=wrapped,
        env_params=wrapped.default_params,
        agent="DuelingQNetwork" if config.dueling else "QNetwork",
        agent_kwargs={"activation": config.activation},
        num_envs=config.num_envs,
        buffer_size=config.buffer_size,
        fill_buffer=config.learning_starts,
        batch_size=config.sample_size,
        max_grad_norm=config.max_grad_norm or float("inf"),
        learning_rate=DQN_LR,
        num_epochs=config.updates,
        polyak=1.0 - config.tau,
        eps_start=config.eps_start,
        eps_end=config.eps_final,
        exploration_fraction=config.eps_decay,
        gamma=config.gamma,
        ddqn=True,
        total_timesteps=config.explore_steps,
        eval_freq=config.explore_steps,
        skip_initial_evaluation=True,
    )

    def train(ts):
        return jax.lax.fori_loop(0, iterations, lambda _, t: algo.train_iteration(t), ts)

    ts = jax.vmap(algo.init_state)(jax.random.split(jax.random.PRNGKey(0), members))
    return jax.jit(jax.vmap(train)), ts, jax.vmap(algo.train_iteration)


def cost(one: Any, state: Any) -> dict[str, float]:
    """XLA's cost analysis of one compiled iteration: flops and bytes accessed."""
    analysis = jax.jit(one).lower(state).compile().cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    return {k: float(analysis.get(k, float("nan"))) for k in ("flops", "bytes accessed")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default="cart_pole")
    parser.add_argument("--agent", choices=["ppo", "dqn"], default="ppo")
    parser.add_argument("--members", type=int, nargs="+", default=[1, 4])
    parser.add_argument(
        "--iterations", type=int, default=None, help="per timed call (ppo 40, dqn 500)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from metapbt import envs

    if envs.spec(args.env).trainer != "jax":
        raise SystemExit(f"{args.env} steps on the host: no rejax counterpart (use a gymnax env)")
    if args.agent == "dqn":
        config: Any = DQN_PRESETS.make("classic").with_overrides(learning_starts=1000)
        args.iterations = args.iterations or 500
        reference = rejax_dqn
        shape = f"{config.updates} gradient steps of {config.sample_size} per iteration"
    else:
        config = presets.make(presets.for_env(args.env)[0], env=args.env)
        args.iterations = args.iterations or 40
        reference = rejax_ppo
        shape = f"{config.epochs} epochs, {config.batch_size // config.minibatch_size} minibatches"
    print(
        f"device: {jax.devices()[0]} ({jax.default_backend()}); env {args.env}; agent "
        f"{args.agent}; batch {config.batch_size}, {shape}"
    )
    rows = []
    for members in args.members:
        steps = members * args.iterations * config.batch_size
        row: dict[str, Any] = {"members": members, "steps_per_call": steps}
        sides = {
            side: fn(args.env, config, members, args.iterations)
            for side, fn in (("ours", ours), ("rejax", reference))
        }
        calls = {side: (step, state) for side, (step, state, _) in sides.items()}
        timings = timed(calls, args.repeats)
        for side, (compile_s, times) in timings.items():
            row[side] = {
                "per_iteration": cost(sides[side][2], sides[side][1]),
                "compile_s": compile_s,
                "seconds": times,
                "steps_per_s": steps / median(times),
            }
        row["ratio"] = row["ours"]["steps_per_s"] / row["rejax"]["steps_per_s"]
        rows.append(row)
        print(
            f"members {members}: ours {row['ours']['steps_per_s']:,.0f} steps/s "
            f"(compile {row['ours']['compile_s']:.1f}s), rejax "
            f"{row['rejax']['steps_per_s']:,.0f} (compile {row['rejax']['compile_s']:.1f}s), "
            f"ratio {row['ratio']:.2f}"
        )
        print(
            "  one iteration (XLA cost analysis): "
            + ", ".join(
                f"{side} {row[side]['per_iteration']['flops']:.3g} flops "
                f"{row[side]['per_iteration']['bytes accessed']:.3g} bytes"
                for side in sides
            )
        )
    spread = {
        side: float(np.max([np.ptp(r[side]["seconds"]) / median(r[side]["seconds"]) for r in rows]))
        for side in ("ours", "rejax")
    }
    name = args.env if args.agent == "ppo" else f"{args.env}_{args.agent}"
    path = write(
        f"engine_vs_reference_{name}",
        {
            "env": args.env,
            "agent": args.agent,
            "preset": config.__dict__,
            "iterations": args.iterations,
            "repeats": args.repeats,
            "rows": rows,
            "largest_relative_spread": spread,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

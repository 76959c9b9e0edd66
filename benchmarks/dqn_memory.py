"""Peak memory of a DQN population on MinAtar: does a 100k-transition buffer per member fit?

    python benchmarks/dqn_memory.py [--members 4] [--steps 20000]

Builds the ``minatar`` DQN preset's trainer for gymnax's Breakout-MinAtar (10x10x4 images; a
100k-transition ring per member holding each observation and its successor as float32),
initialises ``--members`` members, trains ``--steps`` steps per member (past the preset's
``learning_starts``, so gradient steps and buffer writes run) and reports the process's peak
resident memory (``ru_maxrss``) beside the buffers' own size. Writes
benchmarks/results/dqn_memory.json. Memory, not time: the machine's load does not change it.
"""

from __future__ import annotations

import argparse
import resource
import time

import jax
import numpy as np

from metapbt.engine.dqn_presets import DQN_PRESETS
from metapbt.engine.trainer import PopulationTrainer

from _common import write


def peak_mib() -> float:
    """The process's peak resident set so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default="gymnax:Breakout-MinAtar")
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20_000)
    args = parser.parse_args()
    config = DQN_PRESETS.make("minatar").with_overrides(learning_starts=5_000)
    before = peak_mib()
    trainer = PopulationTrainer(args.env, None, config, args.members, agent="dqn")
    state = trainer.init(jax.random.PRNGKey(0), [{"lr": 2.5e-4}] * args.members)
    buffers = sum(np.asarray(x).nbytes for x in jax.tree.leaves(state.buffer)) / 2**20
    after_init = peak_mib()
    start = time.perf_counter()
    state = jax.block_until_ready(trainer.train(state, args.steps))
    seconds = time.perf_counter() - start
    rewards = trainer.evaluate(state, jax.random.PRNGKey(1))
    result = {
        "env": args.env,
        "members": args.members,
        "buffer_size": config.buffer_size,
        "steps": args.steps,
        "buffers_mib": buffers,
        "peak_mib_before": before,
        "peak_mib_after_init": after_init,
        "peak_mib": peak_mib(),
        "train_seconds": seconds,
        "rewards": rewards.tolist(),
    }
    print(
        f"{args.members} members x {config.buffer_size:,} transitions on {args.env}: buffers "
        f"{buffers:,.0f} MiB; peak resident {result['peak_mib']:,.0f} MiB (before the trainer "
        f"{before:,.0f}, after init {after_init:,.0f}); {args.steps:,} steps in {seconds:.0f} s"
    )
    print(f"wrote {write('dqn_memory', result)}")


if __name__ == "__main__":
    main()

"""Brax: env steps/s of the population trainer per robot, and what a study would cost.

    pip install -e ".[brax]"
    python benchmarks/brax_throughput.py [--envs hopper,inverted_pendulum] [--preset brax-paper]

For each robot: a population of ``--members`` PPO members (``--preset``, the ``earth``
context) trains ``--iterations`` iterations after a compiling warm-up; the median rate over
``--repeats`` is in env steps/s (all members). From the rates it prints the estimated wall time
of one ``brax-paper`` run (population 4, 3M steps per member, evaluations excluded) and of the
reference's 3,600-run study (8 methods x 9 robots x 5 planets x 10 seeds), runs trained as
batches of ``--members`` / 4 at the measured rate (use ``--members 64`` or more on a GPU).
Runs unchanged on a GPU (the device is whatever JAX picks); the reference needed 7-8 h per run
on a Xeon core, about 26,000 CPU-hours in all.
Writes benchmarks/results/brax_throughput_<preset>.json.
"""

from __future__ import annotations

import argparse

import jax

from metapbt.engine import presets
from metapbt.engine.factory import make_trainer
from metapbt.envs.brax_envs import BRAX

from _common import median, training_rate, write

RUN_STEPS = 3_000_000
POPULATION = 4
RUNS_PER_ROBOT = 8 * 5 * 10  # methods x planets x seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default=",".join(s.id for s in BRAX))
    parser.add_argument("--preset", default="brax-paper")
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = presets.make(args.preset)
    rows = {}
    for env in args.envs.split(","):
        trainer = make_trainer(env, "earth", config, args.members)
        hparams = [{"lr": 3e-4, "lambda": 0.95, "clip": 0.2}] * args.members
        state = trainer.init(jax.random.PRNGKey(0), hparams)
        steps = config.batch_size * args.iterations
        rate, _ = training_rate(trainer, state, steps, args.repeats)
        # A batch of members / 4 runs trains at this rate: a run's steps cost steps / rate.
        run_h = POPULATION * RUN_STEPS / rate / 3600
        rows[env] = {"steps_per_s": rate, "run_hours": run_h, "robot_hours": RUNS_PER_ROBOT * run_h}
        print(f"{env:26s} {rate:>10,.0f} env steps/s  one run {run_h:6.2f} h")
    robots = len(BRAX)
    total = median([r["robot_hours"] for r in rows.values()]) * robots
    print(
        f"the {RUNS_PER_ROBOT * robots}-run study: about {total:.0f} h on {jax.devices()} "
        f"(the median robot's {RUNS_PER_ROBOT} runs x {robots}; training only)"
    )
    path = write(f"brax_throughput_{args.preset}", {"args": vars(args), "results": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

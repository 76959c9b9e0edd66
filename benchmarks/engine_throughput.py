"""Engine timings: population throughput per preset, the reference README workload, a full run.

    python benchmarks/engine_throughput.py [--repeats 3] [--full-paper]

1. env steps/s of the population trainer (population 4, CartPole) for each preset, measured on
   a compiled interval (median of repeats);
2. wall time of the reference README example workload: PB2, MountainCar, population 4, 10k steps
   per member, paper preset with batch 1000, evaluation (and explore) every iteration
   (the reference needs about 300 s on a 2-core machine);
3. wall time of a full protocol run (population 4, 600k steps, 15 rounds) with ``fast`` (and,
   with ``--full-paper``, with ``paper``).
Writes benchmarks/results/engine_throughput.json.
"""

from __future__ import annotations

import argparse

import jax

from metapbt.engine import presets
from metapbt.engine.run import RunConfig
from metapbt.engine.trainer import PopulationTrainer

from _common import median, timed_run, training_rate, write

CONFIGS = [{"lr": 3e-4, "lambda": 0.95, "clip": 0.2}] * 4


def throughput(preset: str, repeats: int) -> float:
    config = presets.make(preset)
    trainer = PopulationTrainer("cart_pole", "earth", config, 4)
    state = trainer.init(jax.random.PRNGKey(0), CONFIGS)
    steps = config.batch_size * (2 if preset == "paper" else 20)
    return training_rate(trainer, state, steps, repeats)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full-paper", action="store_true")
    args = parser.parse_args()
    results: dict[str, object] = {}
    for preset in ("fast", "paper"):
        rate = throughput(preset, args.repeats)
        results[f"steps_per_s_{preset}"] = rate
        print(f"population trainer, {preset:5s}: {rate:10.0f} env steps/s (4 members)")
    reference = RunConfig(
        env="mountain_car",
        context="earth",
        method="pb2",
        preset="paper-1k",
        budget=10_000,
        interval=1000,
    )
    times = [timed_run(reference) for _ in range(args.repeats)]
    results["reference_example_s"] = {"median": median(times), "samples": times}
    print(f"reference README workload: median {median(times):.1f} s (reference: ~300 s)")
    full = [timed_run(RunConfig()) for _ in range(args.repeats)]
    results["full_fast_s"] = {"median": median(full), "samples": full}
    print(f"full protocol run, fast: median {median(full):.1f} s (target < 60 s)")
    if args.full_paper:
        paper = timed_run(RunConfig(preset="paper"))
        results["full_paper_s"] = paper
        print(f"full protocol run, paper: {paper:.0f} s (target < 600 s)")
    print(f"wrote {write('engine_throughput', results)}")


if __name__ == "__main__":
    main()

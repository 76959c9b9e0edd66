"""Engine timings: population throughput per preset, the reference README workload, a full run.

    python benchmarks/engine_throughput.py [--repeats 3] [--full-paper]

1. env steps/s of the population trainer (population 4, CartPole) for each preset, measured on
   a compiled interval (median of repeats);
2. wall time of the reference README example workload: PB2, MountainCar, population 4, 10k steps
   per member, paper preset with batch 1000, evaluation (and explore) every iteration
   (the reference needs about 300 s on a 2-core machine);
3. wall time of a full protocol run (population 4, 600k steps, 15 rounds) with ``fast`` (and,
   with ``--full-paper``, with ``paper``).
With ``--processes``, also whole ``python -m metapbt run`` processes of (2) and of the default
run, with an empty and a warm compilation cache (median of ``--repeats``).
Writes benchmarks/results/engine_throughput.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax

from metapbt.engine import presets
from metapbt.engine.trainer import PopulationTrainer
from metapbt.runs.run import RunConfig

from _common import median, timed_run, training_rate, write

CONFIGS = [{"lr": 3e-4, "lambda": 0.95, "clip": 0.2}] * 4


def throughput(preset: str, repeats: int) -> float:
    config = presets.make(preset)
    trainer = PopulationTrainer("cart_pole", "earth", config, 4)
    state = trainer.init(jax.random.PRNGKey(0), CONFIGS)
    steps = config.batch_size * (2 if preset == "paper" else 20)
    return training_rate(trainer, state, steps, repeats)[0]


REFERENCE_ARGS = [
    "--env", "mountain_car", "--context", "earth", "--method", "pb2", "--preset", "paper-1k",
    "--budget", "10000", "--interval", "1000",
]  # fmt: skip


def process_seconds(args: list[str], cache: Path) -> float:
    """Wall seconds of one ``python -m metapbt run`` process (imports and start-up included)."""
    env = {**os.environ, "METAPBT_COMPILE_CACHE": str(cache)}
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "metapbt", "run", *args, "--out", f"{out}/run"]
        start = time.perf_counter()
        subprocess.run(command, check=True, env=env, capture_output=True)
        return time.perf_counter() - start


def process_timings(repeats: int) -> dict[str, object]:
    """Cold (empty compilation cache) and warm whole-process times of three workloads.

    Targets (issue 14): the reference README workload <= 25 s cold and <= 10 s warm; the
    default ``metapbt run`` <= 20 s warm (issue 29: 8 s, 12 s, and a fixed cost of about 5
    rounds, from the default run with 3 and 15 rounds). Each cold sample uses a fresh cache
    directory.
    """
    out: dict[str, object] = {}
    for name, args in (
        ("reference_example", REFERENCE_ARGS),
        ("default_run", []),
        ("default_run_3_rounds", ["--budget", "120000"]),
    ):
        cold, warm = [], []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as cache:
                cold.append(process_seconds(args, Path(cache)))
                warm.append(process_seconds(args, Path(cache)))
        out[name] = {"cold": cold, "warm": warm}
        print(
            f"{name} as a whole process: cold cache median {median(cold):.1f} s, "
            f"warm {median(warm):.1f} s"
        )
    # The default run has 15 rounds: a round's cost and the fixed cost of a warm process.
    warm15, warm3 = (median(out[k]["warm"]) for k in ("default_run", "default_run_3_rounds"))
    per_round = (warm15 - warm3) / 12
    fixed = warm3 - 3 * per_round
    out["warm_round_s"], out["warm_fixed_s"] = per_round, fixed
    print(
        f"warm process: {per_round:.2f} s per round, fixed {fixed:.1f} s "
        f"({fixed / per_round:.1f} rounds' worth; target about 5)"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full-paper", action="store_true")
    parser.add_argument(
        "--processes",
        action="store_true",
        help="also time whole `python -m metapbt run` processes, cold and warm cache",
    )
    parser.add_argument(
        "--only-processes", action="store_true", help="only the whole-process times"
    )
    args = parser.parse_args()
    results: dict[str, object] = {}
    if args.only_processes:
        results["process"] = process_timings(args.repeats)
        print(f"wrote {write('engine_throughput_processes', results)}")
        return
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
    if args.processes:
        results["process"] = process_timings(args.repeats)
    if args.full_paper:
        paper = timed_run(RunConfig(preset="paper"))
        results["full_paper_s"] = paper
        print(f"full protocol run, paper: {paper:.0f} s (target < 600 s)")
    print(f"wrote {write('engine_throughput', results)}")


if __name__ == "__main__":
    main()

"""Explore-step time of each meta method at realistic sizes, and its overhead on a full run.

    python benchmarks/meta_explore.py [--repeats 3] [--no-runs]

1. Meta-data: 4 meta tasks x 5 runs of PB2* on the moving-optimum toy (population 4, 15
   rounds: about 280 rows per task). Target: a toy run's history; the explore step
   (``begin_round`` + one ``explore``) is timed at rounds 3..15, after one warm-up explorer
   instance has compiled everything. Also reports the one-off cost of fitting the meta GPs.
2. Overhead over ``pb2-star`` of a full fast-preset CartPole run (population 4, 600k steps,
   15 rounds) with the bundled meta-data; median over ``--repeats`` seeds (target < 15 %), two
   ways:

   * in-process: ``run()`` called for each seed in this process (compilations happen in the
     first run of a method and are shared by the next ones, as in a long-lived driver);
   * whole process: ``python -m metapbt run`` per seed, as a user or a study cell runs it,
     with the compilation cache every command uses by default (:mod:`metapbt.compile_cache`,
     here in a fresh directory) warmed by one untimed run per method; the figure is the
     process's wall time, start-up and imports included. ``--min-compile-time S`` instead
     configures JAX's cache directly, keeping only programs that took at least S s to compile
     (JAX's default is 1 s), for comparison.

Writes benchmarks/results/meta_explore.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from metapbt.metadata.source import MetaSource, TaskRef
from metapbt.population import methods
from metapbt.population.explorers import ExploreRequest, RoundContext
from metapbt.population.history import History
from metapbt.population.meta_io import save_run
from metapbt.runs.run import RunConfig
from metapbt.toy import MovingOptimum, run_toy

from _common import median, timed_run, write

METHODS = ("pb2-star", "meta-prior", "multitask", "taf")


def build_store(root: Path) -> None:
    for k in range(4):
        problem = MovingOptimum(start=(0.1 + 0.1 * k, 0.8, 0.2))
        for seed in range(5):
            result = run_toy("pb2-star", 100 + seed, problem=problem)
            save_run(
                root,
                result.population.history,
                task=f"toy {k}",
                seed=seed,
                method="pb2-star",
                env="toy",
                context={"k": float(k)},
            )


def step_times(name: str, source: MetaSource, target: History) -> tuple[list[float], float]:
    frame = target.to_frame()
    meta = source if methods.uses_metadata(name) else None
    explorer = methods.make(name, metadata=meta).explorer
    times, first = [], 0.0
    for step in sorted(frame["step"].unique())[2:]:
        history = History.from_frame(frame[frame["step"] <= step], target.space)
        rewards = frame[frame["step"] == step]["reward"].to_numpy()
        ctx = RoundContext(target.space, history, int(step), rewards, 4)
        donor = int(np.argmax(rewards))
        config = frame[(frame["step"] == step) & (frame["member"] == donor)]
        request = ExploreRequest(
            0,
            donor,
            {n: float(config[n].iloc[0]) for n in target.space.names},
            float(rewards[donor]),
            (),
        )
        start = time.perf_counter()
        explorer.begin_round(ctx, np.random.default_rng(0))
        explorer.explore(ctx, request, np.random.default_rng(1))
        elapsed = time.perf_counter() - start
        if first == 0.0:
            first = elapsed
        else:
            times.append(elapsed)
    return times, first


def run_times(method: str, seeds: int) -> list[float]:
    return [timed_run(RunConfig(method=method, seed=seed)) for seed in range(seeds)]


def process_times(
    method: str, seeds: int, cache: Path, min_compile_time: float | None = None
) -> list[float]:
    """Wall seconds of ``python -m metapbt run`` per seed (after one untimed warm-up run).

    ``min_compile_time``: configure JAX's cache directly, keeping the programs that took at
    least this long to compile; ``None``: the command's own default cache, in ``cache``.
    """
    env = {**os.environ, "METAPBT_COMPILE_CACHE": str(cache)}
    if min_compile_time is not None:
        env["JAX_COMPILATION_CACHE_DIR"] = str(cache)
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = str(min_compile_time)
    times = []
    for seed in (-1, *range(seeds)):
        with tempfile.TemporaryDirectory() as out:
            command = [sys.executable, "-m", "metapbt", "run", "--method", method]
            command += ["--seed", str(max(seed, 0) + 100 * (seed < 0)), "--out", f"{out}/run"]
            start = time.perf_counter()
            subprocess.run(command, check=True, env=env, capture_output=True)
            if seed >= 0:
                times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-runs", action="store_true")
    parser.add_argument("--no-steps", action="store_true", help="skip the explore-step part")
    parser.add_argument(
        "--min-compile-time",
        type=float,
        default=None,
        help="whole-process runs: configure JAX's cache directly, keeping programs compiled "
        "in at least this many seconds (default: the command's own cache, keeping all)",
    )
    parser.add_argument(
        "--methods",
        default=",".join((*METHODS, "meta-dkl")),
        help="full runs of these methods (the first is the baseline)",
    )
    parser.add_argument("--label", default="", help="write meta_explore_<label>.json")
    args = parser.parse_args()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        build_store(Path(tmp))
        source = MetaSource(Path(tmp), TaskRef("toy", {"k": -1.0}, "toy target"))
        target = run_toy("pb2-star", 7).population.history
        for name in () if args.no_steps else METHODS:
            step_times(name, source, target)  # compile everything once
            times, first = step_times(name, source, target)
            results[name] = {"median_step_s": median(times), "first_step_s": first}
            print(
                f"{name:10s} explore step: median {median(times):.3f} s "
                f"(first round incl. meta GP fits: {first:.2f} s)"
            )
    if not args.no_runs:
        with tempfile.TemporaryDirectory() as cache:
            for label, timer in (
                ("in-process", lambda m: run_times(m, args.repeats)),
                (
                    "process",
                    lambda m: process_times(m, args.repeats, Path(cache), args.min_compile_time),
                ),
            ):
                base = 0.0
                for name in args.methods.split(","):
                    times = timer(name)
                    t = median(times)
                    base = base or t
                    results[f"{label}_{name}_s"] = times
                    print(
                        f"full fast run ({label:10s}), {name:10s}: median {t:.1f} s "
                        f"{[round(x, 1) for x in times]}, overhead {100 * (t / base - 1):+.1f} %"
                    )
    print(f"wrote {write('_'.join(filter(None, ('meta_explore', args.label))), results)}")


if __name__ == "__main__":
    main()

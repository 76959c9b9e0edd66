"""Time of one ``dkl`` / ``meta-dkl`` explore step (deep-kernel fit + UCB maximisation).

    python benchmarks/dkl_explore.py [--rows 50 200] [--repeats 3]

A population of 8 members is simulated until the PB2 training set holds about n rows; after a
compiling warm-up round, three rounds are timed, each one ``begin_round`` (the fit) plus one
``explore`` (UCB with a pending point). ``meta-dkl`` pre-trains once per run on the bundled
CartPole meta-data (target "cart_pole earth" left out); that one-off cost is reported apart.
The reference's DKL step took minutes (1.5-5 min of fitting, spec 1.6). Writes
benchmarks/results/dkl_explore.json.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from metapbt.envs import resolve_context
from metapbt.metadata.source import MetaSource, TaskRef
from metapbt.population import methods
from metapbt.runs.run import bundled_metadata

from _common import median, simulated_rounds, write

SIZE = 8


def one_size(method: str, rows: int, seed: int) -> tuple[list[float], float]:
    target = TaskRef("cart_pole", dict(resolve_context("cart_pole", "earth")), "cart_pole earth")
    meta = MetaSource(bundled_metadata("cart_pole"), target)
    explorer = methods.make(method, metadata=meta if method == "meta-dkl" else None).explorer
    times, first = [], 0.0
    for rng, ctx, request in simulated_rounds(rows, SIZE, seed):
        start = time.perf_counter()
        explorer.begin_round(ctx, rng)
        explorer.explore(ctx, request, rng)
        elapsed = time.perf_counter() - start
        if first:
            times.append(elapsed)
        else:
            first = elapsed  # compiles, and pre-trains for meta-dkl
    return times, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = {}
    print(f"{'method':>9s} {'rows':>5s} {'median s':>9s} {'max s':>7s} {'first round s':>14s}")
    for method in ("dkl", "meta-dkl"):
        for rows in args.rows:
            samples, firsts = [], []
            for seed in range(args.repeats):
                times, first = one_size(method, rows, seed)
                samples += times
                firsts.append(first)
            results[f"{method}@{rows}"] = {
                "median_s": median(samples),
                "max_s": float(np.max(samples)),
                "first_round_median_s": median(firsts),
                "samples": samples,
            }
            print(
                f"{method:>9s} {rows:>5d} {median(samples):>9.3f} {np.max(samples):>7.3f} "
                f"{median(firsts):>14.2f}"
            )
    path = write("dkl_explore", {"args": vars(args), "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Time of one PB2* explore step (GP fit + UCB maximisation) at growing history sizes.

    python benchmarks/explore_step.py [--rows 50 200 1000] [--repeats 3]

For each size n a population of 8 members is simulated until the PB2 training set holds
n - 24 rows (a warm-up round, compiled), then three more rounds (n - 16, n - 8, n rows) are
timed. Each timed round is one ``begin_round`` (GP fit, warm-started from the last round as in
a run) plus one ``explore`` (UCB with a pending point). Prints medians over rounds and repeats,
and how many new XLA compilations the timed rounds caused (target: 0).
Writes benchmarks/results/explore_step.json.
"""

from __future__ import annotations

import argparse
import time

from metapbt.population import methods
from metapbt.surrogates import gp, maximize_unit_box

from _common import median, simulated_rounds, write

SIZE = 8
JITTED = {
    "factor": gp._factor,
    "predict": gp.predict,
    "acquisition": maximize_unit_box,
}


def compiles() -> int:
    # the fit is a stored program: its loaded calls count as well as the traced function's
    return gp.FIT.cache_size() + sum(f._cache_size() for f in JITTED.values())


def one_size(rows: int, seed: int) -> tuple[list[float], int]:
    explorer = methods.make("pb2-star").explorer
    times, new_compiles, warmed = [], 0, False
    for rng, ctx, request in simulated_rounds(rows, SIZE, seed):
        before = compiles()
        start = time.perf_counter()
        explorer.begin_round(ctx, rng)
        explorer.explore(ctx, request, rng)
        elapsed = time.perf_counter() - start
        if warmed:  # the first round at this size is the compiling warm-up
            times.append(elapsed)
            new_compiles += compiles() - before
        warmed = True
    return times, new_compiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[50, 200, 1000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = {}
    print(f"{'rows':>6s} {'median s':>9s} {'min s':>7s} {'max s':>7s} {'new compiles':>13s}")
    for rows in args.rows:
        samples, extra = [], 0
        for seed in range(args.repeats):
            times, new = one_size(rows, seed)
            samples += times
            extra += new
        results[str(rows)] = {
            "median_s": median(samples),
            "samples_s": samples,
            "new_compiles": extra,
        }
        print(
            f"{rows:6d} {median(samples):9.3f} {min(samples):7.3f} {max(samples):7.3f} {extra:13d}"
        )
    path = write("explore_step", {"population": SIZE, "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

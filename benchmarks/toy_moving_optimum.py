"""Synthetic benchmark (no RL): mean final score of each method on the moving-optimum toy.

    python benchmarks/toy_moving_optimum.py [--seeds 10]

Population 4, 15 rounds of 40k steps (the paper's protocol shape). Prints mean and standard
error over seeds and writes benchmarks/results/toy_moving_optimum.json.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from metapbt.toy import MovingOptimum, run_toy

from _common import write

METHODS = ("random", "pbt", "pb2", "pb2-star")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    problem = MovingOptimum()
    rows = {}
    print(f"{'method':10s} {'mean':>7s} {'sem':>7s} {'seconds':>8s}")
    for method in METHODS:
        start = time.perf_counter()
        finals = [run_toy(method, seed, problem=problem).final for seed in range(args.seeds)]
        seconds = time.perf_counter() - start
        mean, sem = float(np.mean(finals)), float(np.std(finals) / np.sqrt(len(finals)))
        rows[method] = {"finals": finals, "mean": mean, "sem": sem, "seconds": seconds}
        print(f"{method:10s} {mean:7.3f} {sem:7.3f} {seconds:8.1f}")
    verdict = rows["pb2-star"]["mean"] > rows["random"]["mean"]
    print(f"pb2-star beats random search: {verdict}")
    path = write(
        "toy_moving_optimum",
        {
            "seeds": args.seeds,
            "problem": problem.__dict__,
            "results": rows,
            "pb2_star_beats_random": verdict,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Synthetic benchmark (no RL): PB2-Mix against random, PBT and PB2* on a mixed space.

    python benchmarks/toy_mixed.py [--seeds 20]

The moving-optimum toy (``metapbt.toy``) with a categorical dimension of three choices whose
best changes halfway through the run (choice ``a`` until step 300k, then ``b``; the others
train at 0.3 of the rate). Population 4, 15 rounds of 40k steps. ``random``, ``pbt`` and
``pb2-mix`` tune all four parameters; ``pb2-star`` tunes the numeric three with the category
held fixed (seed ``k`` holds choice ``k mod 3``: what a user without a categorical method
does). Prints the mean and standard error of the final true score over seeds, the share of
the population on the best choice over the run, and writes
benchmarks/results/toy_mixed.json. Not a timing benchmark (the seconds are printed for
scale only).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from metapbt import Categorical, SearchSpace
from metapbt.population.space import default_space
from metapbt.toy import MovingOptimum, run_toy

from _common import write

CHOICES = ("a", "b", "c")
METHODS = ("random", "pbt", "pb2-star", "pb2-mix")


def mixed_space() -> SearchSpace:
    """The paper's three PPO parameters and one categorical."""
    return SearchSpace(
        {**{n: default_space()[n] for n in default_space()}, "cat": Categorical(CHOICES)}
    )


def on_best(result, problem: MovingOptimum, held: str | None) -> float:
    """Share of member-rounds trained on the best choice."""
    frame = result.population.history.to_frame()
    choices = frame["cat"] if "cat" in frame else [held] * len(frame)
    steps = frame["step"].to_numpy()
    # A row's step is the end of the interval it trained: its middle decides the best choice.
    best = [problem.best_choice(s - problem.interval / 2) for s in steps]
    return float(np.mean([c == b for c, b in zip(choices, best, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    problem = MovingOptimum(choices=CHOICES)
    rows = {}
    print(f"{'method':10s} {'mean':>7s} {'sem':>7s} {'on best':>8s} {'seconds':>8s}")
    for method in METHODS:
        start = time.perf_counter()
        finals, shares = [], []
        for seed in range(args.seeds):
            if method == "pb2-star":
                held = CHOICES[seed % len(CHOICES)]
                result = run_toy(method, seed, problem=problem, space=default_space(), held=held)
            else:
                held = None
                result = run_toy(method, seed, problem=problem, space=mixed_space())
            finals.append(result.final)
            shares.append(on_best(result, problem, held))
        seconds = time.perf_counter() - start
        mean, sem = float(np.mean(finals)), float(np.std(finals) / np.sqrt(len(finals)))
        rows[method] = {
            "finals": finals,
            "mean": mean,
            "sem": sem,
            "on_best_choice": float(np.mean(shares)),
            "seconds": seconds,
        }
        print(f"{method:10s} {mean:7.3f} {sem:7.3f} {np.mean(shares):8.2f} {seconds:8.1f}")
    path = write(
        "toy_mixed",
        {"seeds": args.seeds, "problem": problem.__dict__, "results": rows},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

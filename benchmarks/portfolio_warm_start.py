"""Warm versus cold start: PB2* from a portfolio against PB2* from random draws.

    python benchmarks/portfolio_warm_start.py --portfolio pf/portfolio.json --seeds 3

Prints the seed-mean best reward per round of both, and writes JSON.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from metapbt.runs.run import RunConfig, run

from _common import write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--portfolio", required=True)
    parser.add_argument("--env", default="cart_pole")
    parser.add_argument("--context", default="earth")
    parser.add_argument("--method", default="pb2-star")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    curves: dict[str, list[list[float]]] = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for name, portfolio in (("cold", None), ("warm", args.portfolio)):
                config = RunConfig(
                    env=args.env,
                    context=args.context,
                    method=args.method,
                    seed=seed,
                    portfolio=portfolio,
                )
                summary = run(config, Path(tmp) / f"{name}{seed}")
                curves[name].append([r["best"] for r in summary["best_per_round"]])
    means = {k: np.nanmean(np.asarray(v), axis=0).round(1).tolist() for k, v in curves.items()}
    for name, values in means.items():
        print(f"{name}: mean best per round {values}")
        print(f"{name}: mean over rounds {np.mean(values):.1f}, final {values[-1]:.1f}")
    write("portfolio_warm_start", {"args": vars(args), "curves": curves, "means": means})


if __name__ == "__main__":
    main()

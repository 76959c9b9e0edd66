"""Scheduling overhead of MetaPB2 (our methods in Ray Tune) against Ray's own PB2.

    pip install -e ".[bench]"
    python benchmarks/ray_tune_overhead.py --repeats 3

The same cheap function trainable (no learning: a score that grows with how close lr, lambda
and clip are to a fixed point, a checkpoint per report) is tuned by Ray's ``PB2`` and by
``MetaPB2`` with ``pb2-star`` and ``pbt``: 4 trials, ``--iterations`` reports each, a sync point
every ``--interval``. Reported per scheduler, medians over ``--repeats`` runs: the seconds spent
inside the scheduler's ``on_trial_result`` per sync point (the GP fits and acquisitions happen
there, plus Ray's checkpoint bookkeeping, which both share) and the wall time per
trial-iteration of the whole ``Tuner.fit``. Run it on an idle machine: every figure is a
whole-run median. Written to ``benchmarks/results/ray_tune_overhead.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.schedulers.pb2 import PB2

from metapbt.integrations.ray_tune import MetaPB2

from _common import median, write

BOUNDS = {"lr": [1e-5, 1e-3], "lambda": [0.9, 0.99], "clip": [0.1, 0.5]}


def trainable(config: dict) -> None:
    state = {"w": 0.0, "it": 0}
    restored = tune.get_checkpoint()
    if restored:
        with restored.as_directory() as d:
            state = json.loads((Path(d) / "s.json").read_text())
    while state["it"] < config["iterations"]:
        state["it"] += 1
        state["w"] += 2 - abs(math.log10(config["lr"]) + 3.5) - abs(config["clip"] - 0.2)
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / "s.json").write_text(json.dumps(state))
            tune.report({"score": state["w"]}, checkpoint=tune.Checkpoint.from_directory(d))


def timed(cls: type) -> type:
    """``cls`` with the time spent in ``on_trial_result`` summed in ``self.seconds``."""

    class Timed(cls):  # type: ignore[misc, valid-type]
        seconds = 0.0

        def on_trial_result(self, *args: Any, **kwargs: Any) -> str:
            start = time.perf_counter()
            try:
                return super().on_trial_result(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

    Timed.__name__ = cls.__name__
    return Timed


def make(name: str, interval: int) -> Any:
    common = {
        "time_attr": "training_iteration",
        "metric": "score",
        "mode": "max",
        "perturbation_interval": interval,
    }
    if name == "ray-pb2":
        return timed(PB2)(hyperparam_bounds=BOUNDS, synch=True, **common)
    return timed(MetaPB2)(name.removeprefix("metapbt-"), **common)


def one(name: str, args: argparse.Namespace, root: Path, repeat: int) -> dict[str, float]:
    scheduler = make(name, args.interval)
    tuner = tune.Tuner(
        trainable,
        param_space={"iterations": args.iterations}
        | ({k: tune.uniform(*v) for k, v in BOUNDS.items()} if name == "ray-pb2" else {}),
        tune_config=tune.TuneConfig(scheduler=scheduler, num_samples=4, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(root), name=f"{name}-{repeat}", verbose=0),
    )
    start = time.perf_counter()
    tuner.fit()
    wall = time.perf_counter() - start
    syncs = args.iterations // args.interval
    return {
        "perturbations": float(scheduler._num_perturbations),  # exploits Ray carried out
        "scheduler_s_per_sync": scheduler.seconds / syncs,
        "wall_s_per_trial_iteration": wall / (4 * args.iterations),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--interval", type=int, default=3)
    parser.add_argument(
        "--schedulers", default="ray-pb2,metapbt-pb2-star,metapbt-pbt", help="comma-separated"
    )
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    rows = {}
    with tempfile.TemporaryDirectory() as root:
        for name in args.schedulers.split(","):
            runs = [one(name, args, Path(root), r) for r in range(args.repeats)]
            rows[name] = {k: median([r[k] for r in runs]) for k in runs[0]}
            print(
                f"{name:18s} scheduler {rows[name]['scheduler_s_per_sync']:.3f} s per sync point, "
                f"wall {rows[name]['wall_s_per_trial_iteration']:.3f} s per trial-iteration, "
                f"{rows[name]['perturbations']:.0f} exploits"
            )
    path = write("ray_tune_overhead", {"args": vars(args), "results": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
